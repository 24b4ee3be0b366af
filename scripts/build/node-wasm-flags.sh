#!/usr/bin/env bash
# Prints the node flags the edge's wasm needs: Node.js 20 ships relaxed SIMD
# behind a flag (on by default from Node.js 22).
major=$(node -p 'process.versions.node.split(".")[0]')
if (( major < 22 )); then echo "--experimental-wasm-relaxed-simd"; fi
