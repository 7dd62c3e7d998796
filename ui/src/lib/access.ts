// Who is signed in and what their role lets them do. The console hides every control the role may not use; the
// API refuses them anyway (403), so this is for a clean page, not for safety.
import { createContext, useContext } from 'react';
import type { Me, UserRole } from '../api/types';

/** The roles from the least to the most allowed. */
export const ROLES: readonly UserRole[] = ['viewer', 'editor', 'admin'];

/** What each role may do, in a few words. */
export const ROLE_TEXT: Record<UserRole, string> = {
  viewer: 'reads everything but secret values, changes nothing',
  editor: 'changes streams, processors, files and secrets, and drains workers',
  admin: 'everything, users included',
};

export function atLeast(role: UserRole, min: UserRole): boolean {
  return ROLES.indexOf(role) >= ROLES.indexOf(min);
}

export interface Access {
  me: Me;
  /** Streams, processors, files, secrets and workers: editors and admins. */
  canEdit: boolean;
  /** Users: admins only. */
  isAdmin: boolean;
}

export function accessOf(me: Me): Access {
  return { me, canEdit: atLeast(me.role, 'editor'), isAdmin: me.role === 'admin' };
}

/** Provided by the signed-in shell once `GET /api/v1/auth/me` has answered. */
export const AccessContext = createContext<Access | null>(null);

export function useAccess(): Access {
  const a = useContext(AccessContext);
  if (!a) throw new Error('useAccess outside the signed-in shell');
  return a;
}
