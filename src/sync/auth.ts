import { createHash, timingSafeEqual } from 'node:crypto'

/** Whether an `Authorization` header carries `Bearer <token>`; compared in constant time. */
export function bearerMatches(header: string | undefined, token: string): boolean {
  if (!header || !token) return false
  const m = /^Bearer\s+(.+)$/i.exec(header.trim())
  if (!m) return false
  const a = createHash('sha256')
    .update(m[1] as string)
    .digest()
  const b = createHash('sha256').update(token).digest()
  return timingSafeEqual(a, b)
}
