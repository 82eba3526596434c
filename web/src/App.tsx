import { useEffect, useState, type FormEvent } from "react";
import { Activity, Boxes, Brain, Clock, Database, Gauge, GraduationCap, Image, KeyRound, LogOut, Moon, Settings as SettingsIcon, Shield, Sun, Workflow } from "lucide-react";
import { Link, match, navigate, useLocation } from "./router";
import { useSession, who } from "./api/session";
import { ProblemView, Spinner } from "./components/ui";
import { Dashboard } from "./pages/Dashboard";
import { ModuleDetail, Modules } from "./pages/Modules";
import { WorkflowEditor, Workflows } from "./pages/Workflows";
import { RunDetail, Runs } from "./pages/Runs";
import { Triggers } from "./pages/Triggers";
import { Secrets, Settings, Tokens } from "./pages/Admin";
import { Models } from "./pages/Models";
import { Studio } from "./pages/Studio";
import { DatasetDetail, Datasets, TrainingJobDetail, TrainingJobs } from "./pages/Training";
import { noFeatures, probeFeatures, type Features } from "./api/features";

type Theme = "light" | "dark";

export function useTheme(): [Theme, (t: Theme) => void] {
  const initial = (): Theme =>
    (localStorage.getItem("millrace.theme") as Theme | null) ?? (window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  const [theme, setTheme] = useState<Theme>(initial);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem("millrace.theme", theme);
  }, [theme]);
  return [theme, setTheme];
}

// Each page with the scope it needs to be shown at all, and the optional
// server feature it needs (api/features.ts).
const nav: { to: string; label: string; icon: typeof Gauge; scope: string; feature?: keyof Features }[] = [
  { to: "/", label: "Dashboard", icon: Gauge, scope: "workflows:read" },
  { to: "/modules", label: "Modules", icon: Boxes, scope: "modules:read" },
  { to: "/workflows", label: "Workflows", icon: Workflow, scope: "workflows:read" },
  { to: "/runs", label: "Runs", icon: Activity, scope: "workflows:read" },
  { to: "/triggers", label: "Triggers", icon: Clock, scope: "workflows:read" },
  { to: "/ai/models", label: "AI models", icon: Brain, scope: "models:read" },
  { to: "/ai/studio", label: "Image studio", icon: Image, scope: "modules:invoke", feature: "sdxl" },
  { to: "/ai/datasets", label: "Datasets", icon: Database, scope: "datasets:read", feature: "datasets" },
  { to: "/ai/training", label: "Training", icon: GraduationCap, scope: "training:read", feature: "training" },
  { to: "/secrets", label: "Secrets", icon: Shield, scope: "secrets:read" },
  { to: "/tokens", label: "API tokens", icon: KeyRound, scope: "tokens:admin" },
  { to: "/settings", label: "Settings", icon: SettingsIcon, scope: "" },
];

export function App() {
  const { session, loading } = useSession();
  const [theme, setTheme] = useTheme();
  if (loading) return <Spinner label="Starting" />;
  if (!session) return <Login />;
  return <Shell theme={theme} setTheme={setTheme} />;
}

function Shell({ theme, setTheme }: { theme: Theme; setTheme: (t: Theme) => void }) {
  const { path } = useLocation();
  const { session, signOut, can } = useSession();
  const current = (to: string) => (to === "/" ? path === "/" : path === to || path.startsWith(to + "/"));
  const [features, setFeatures] = useState<Features>(noFeatures);
  const readModules = can("modules:read");
  useEffect(() => {
    probeFeatures(readModules).then(setFeatures);
  }, [readModules]);
  const visible = nav.filter((n) => (!n.scope || can(n.scope)) && (!n.feature || features[n.feature]));
  return (
    <div className="shell">
      <nav className="side" aria-label="Main">
        <div className="brand">Millrace</div>
        {visible.map((n) => (
          <Link key={n.to} to={n.to} aria-current={current(n.to) ? "page" : undefined}>
            <n.icon size={16} aria-hidden /> {n.label}
          </Link>
        ))}
        <div className="grow" />
        <button type="button" onClick={() => setTheme(theme === "dark" ? "light" : "dark")} aria-label={`Switch to ${theme === "dark" ? "light" : "dark"} theme`}>
          {theme === "dark" ? <Sun size={16} /> : <Moon size={16} />} {theme === "dark" ? "Light" : "Dark"} theme
        </button>
        <div className="muted" style={{ padding: "0.5rem 0.2rem" }}>
          Signed in as <strong>{who(session!)}</strong> ({session!.role || "custom scopes"})
        </div>
        <button type="button" onClick={() => signOut().then(() => navigate("/"))}>
          <LogOut size={16} /> Sign out
        </button>
      </nav>
      <main>
        <Page path={path} features={features} />
      </main>
    </div>
  );
}

function Page({ path, features }: { path: string; features: Features }) {
  let m;
  if (path === "/ai/studio" && features.sdxl) return <Studio version={features.sdxl} />;
  if (features.datasets) {
    if (path === "/ai/datasets") return <Datasets />;
    if ((m = match("/ai/datasets/:id", path))) return <DatasetDetail id={m.id} />;
  }
  if (features.training) {
    if (path === "/ai/training") return <TrainingJobs />;
    if ((m = match("/ai/training/:id", path))) return <TrainingJobDetail id={m.id} />;
  }
  if (path === "/") return <Dashboard />;
  if (path === "/modules") return <Modules />;
  if ((m = match("/modules/:id", path))) return <ModuleDetail id={m.id} />;
  if (path === "/workflows") return <Workflows />;
  if ((m = match("/workflows/:id", path))) return <WorkflowEditor id={m.id} />;
  if (path === "/runs") return <Runs />;
  if ((m = match("/runs/:id", path))) return <RunDetail id={m.id} />;
  if (path === "/triggers") return <Triggers />;
  if (path === "/ai/models") return <Models />;
  if (path === "/secrets") return <Secrets />;
  if (path === "/tokens") return <Tokens />;
  if (path === "/settings") return <Settings />;
  return (
    <div className="empty">
      <strong>No page here</strong>
      <Link to="/">Go to the dashboard</Link>
    </div>
  );
}

function Login() {
  const { signIn } = useSession();
  const [mode, setMode] = useState<"token" | "password">("token");
  const [token, setToken] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useTheme();
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(mode === "token" ? { token: token.trim() } : { username, password });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const ready = mode === "token" ? !!token.trim() : !!username && !!password;
  return (
    <div className="login panel">
      <h1>Sign in to Millrace</h1>
      <div className="tabs" role="tablist" aria-label="Sign in with">
        <button type="button" role="tab" aria-selected={mode === "token"} onClick={() => setMode("token")}>
          API token
        </button>
        <button type="button" role="tab" aria-selected={mode === "password"} onClick={() => setMode("password")}>
          User name and password
        </button>
      </div>
      <form onSubmit={submit}>
        {mode === "token" ? (
          <div className="field">
            <label htmlFor="token">API token</label>
            <input id="token" type="password" autoComplete="off" autoFocus value={token} onChange={(e) => setToken(e.target.value)} placeholder="mr_…" required />
            <small>The first start of the server prints an admin token. An admin can make more under API tokens.</small>
          </div>
        ) : (
          <>
            <div className="field">
              <label htmlFor="username">User name</label>
              <input id="username" autoComplete="username" autoFocus value={username} onChange={(e) => setUsername(e.target.value)} required />
            </div>
            <div className="field">
              <label htmlFor="password">Password</label>
              <input id="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
            </div>
          </>
        )}
        <ProblemView error={error} />
        <button className="primary" type="submit" disabled={busy || !ready}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}
