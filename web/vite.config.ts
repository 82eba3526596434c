import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The console is served by the Go server at / (web/embed.go); dist/docs
// (the API reference viewer) is added after the build by build.mjs.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    chunkSizeWarningLimit: 1500,
  },
  test: {
    environment: "jsdom",
    include: ["src/**/*.test.{ts,tsx}"],
  },
});
