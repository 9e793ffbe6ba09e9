export { createExecPostHook, splitCommand } from './exec-post.ts'
export type { HookContext, HookJob, HookStage, JobHook } from './hook.ts'
export { HookError, runHookStage } from './hook.ts'
export { createLogRotationHook, listLogs } from './log-rotation.ts'
