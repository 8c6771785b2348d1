// Node's atomic file write, kept at this path for the Node-only modules that import it; the library
// reaches it through '#platform' (src/platform/), which the browser build replaces.
export { writeFileAtomic } from '../platform/atomic-write.js';
