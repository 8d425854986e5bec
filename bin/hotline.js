#!/usr/bin/env node
// The `hotline` command. The CLI is compiled to dist/ by `npm run build`: `npm pack`/`npm publish` run it (prepack),
// and in this repository `npm start`, `npm test` (pretest) and `npm run bench` do.
import '../dist/cli/main.js';
