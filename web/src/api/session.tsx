import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { api, must, setCsrfToken } from "./client";

/** Session is what /v1/auth/login and /v1/auth/me answer. */
export type Session = {
  /** The console user, or null for a token that belongs to no user. */
  user: { username: string } | null;
  /** The role; empty for a token with hand-picked scopes. */
  role: string;
  scopes: string[];
  csrf_token?: string;
};

/** Credentials are an API token, or a console user's name and password. */
export type Credentials = { token: string } | { username: string; password: string };

/** who names the signed-in caller for people. */
export function who(s: Session): string {
  return s.user?.username ?? "API token";
}

type SessionState = {
  session: Session | null;
  loading: boolean;
  signIn: (c: Credentials) => Promise<void>;
  signOut: () => Promise<void>;
  /** can reports whether the session holds a scope (an admin's * holds all). */
  can: (scope: string) => boolean;
};

const Ctx = createContext<SessionState | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [session, setSession] = useState<Session | null>(null);
  const [loading, setLoading] = useState(true);

  const adopt = (s: Session | null) => {
    setCsrfToken(s?.csrf_token ?? "");
    setSession(s);
  };

  useEffect(() => {
    // The cookie is HttpOnly: ask the server whether it still holds a session.
    api
      .GET("/v1/auth/me")
      .then((r) => adopt(r.data ? (r.data as Session) : null))
      .catch(() => adopt(null))
      .finally(() => setLoading(false));
    const out = () => adopt(null);
    window.addEventListener("millrace:signed-out", out);
    return () => window.removeEventListener("millrace:signed-out", out);
  }, []);

  const signIn = useCallback(async (c: Credentials) => {
    const s = await must(api.POST("/v1/auth/login", { body: c }));
    adopt(s as Session);
  }, []);

  const signOut = useCallback(async () => {
    await api.POST("/v1/auth/logout").catch(() => undefined);
    adopt(null);
  }, []);

  const can = useCallback(
    (scope: string) => !!session && (session.scopes.includes("*") || session.scopes.includes(scope)),
    [session],
  );

  return <Ctx.Provider value={{ session, loading, signIn, signOut, can }}>{children}</Ctx.Provider>;
}

export function useSession(): SessionState {
  const s = useContext(Ctx);
  if (!s) throw new Error("useSession outside SessionProvider");
  return s;
}
