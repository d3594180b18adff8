declare const __ANIMUS_VERSION__: string;

/** This build's version: esbuild defines it from package.json; unbundled (tests) it is a dev marker. */
export const VERSION = typeof __ANIMUS_VERSION__ === 'string' ? __ANIMUS_VERSION__ : '0.0.0-dev';
