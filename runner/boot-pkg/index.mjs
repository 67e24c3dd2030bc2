// Mistakes in the playbook's own code while it loads exit 4 (runner/load-errors.mjs).
import '../load-errors.mjs';
import '../boot.mjs';
