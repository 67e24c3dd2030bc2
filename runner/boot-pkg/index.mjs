import '../boot.mjs';
