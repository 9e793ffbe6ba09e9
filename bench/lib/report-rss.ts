// Loaded with `node --import` into a benchmarked process: reports its peak RSS (worker threads
// included) on stderr as it exits.
process.on('exit', () => {
  process.stderr.write(`\npeak-rss-kib=${process.resourceUsage().maxRSS}\n`)
})
