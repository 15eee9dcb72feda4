// Types of allocator.mjs (plain JS so that it runs before tsx is loaded).

/** glibc malloc settings of `firn artifact` and the artifact benchmark (bytes, as strings). */
export declare const ALLOCATOR_SETTINGS: Readonly<{
  MALLOC_TRIM_THRESHOLD_: string;
  MALLOC_MMAP_THRESHOLD_: string;
}>;
/** V8 heap flags of `firn artifact` and the artifact benchmark (decision 1430). */
export declare const HEAP_FLAGS: readonly string[];
/** The HEAP_FLAGS `execArgv` lacks (a flag the user gave wins); empty when FIRN_ALLOCATOR=default. */
export declare function missingHeapFlags(execArgv: readonly string[], env: NodeJS.ProcessEnv): string[];
/** Set in the re-executed child; a process that sees it never re-executes again. */
export declare const ALLOCATOR_GUARD: 'FIRN_ALLOCATOR_APPLIED';
/** `FIRN_ALLOCATOR=default` keeps glibc's defaults. */
export declare const ALLOCATOR_ESCAPE: 'FIRN_ALLOCATOR';
/** The settings `env` lacks (the user's MALLOC_* or GLIBC_TUNABLES values win, per setting). */
export declare function missingAllocatorSettings(env: NodeJS.ProcessEnv): Record<string, string>;
/** `env` with the missing settings and the guard added. */
export declare function allocatorEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
/** The settings in effect, and whether they are exactly those `firn artifact` runs with. */
export declare function describeAllocator(env: NodeJS.ProcessEnv): {
  line: string;
  asFirnArtifact: boolean;
  settings: Record<string, string>;
};
/** Re-execute once with the settings (and the heap flags) when missing; false when the caller should go on itself. */
export declare function reexecWithAllocator(): Promise<boolean>;
