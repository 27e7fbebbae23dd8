/** Types of priority.js (plain JavaScript run by the sandbox threads); documentation is in that file. */
export declare const BACKGROUND_NICENESS: number;
export declare const BACKGROUND_ARG: string;
export declare function applyThreadPriority(): number | null;
