// Placeholder until the runtime lands: keeps the build and the runtime source repo whole.
console.log('animus runtime: not implemented yet');
