// Text nested deeper than 512 brackets is refused before parsing, naming the
// line and the limit: MLIR's recursive-descent parser overflowed its stack
// (SIGSEGV) on 10,000 nested '['. The limit counts (), [], {} and <> together,
// outside string literals and comments.
//
// RUN: %python -c "print('// deep attribute on line 2\nmodule attributes {test.a = ' + '[' * 10000 + ']' * 10000 + '} {}')" > %t.deep.mlir
// RUN: not fp-opt %t.deep.mlir 2>&1 | FileCheck %s --check-prefix=DEEP
// RUN: not fp-opt < %t.deep.mlir 2>&1 | FileCheck %s --check-prefix=STDIN
// RUN: not fp-opt %t.deep.mlir --fp-compile-pipeline="arch=sm_80" --fp-emit=cuda 2>&1 | FileCheck %s --check-prefix=DEEP
// DEEP: deep.mlir:2: error: brackets nested deeper than the limit of 512: refusing to parse
// DEEP-NOT: Stack dump
// STDIN: <stdin>:2: error: brackets nested deeper than the limit of 512: refusing to parse
//
// 512 levels still parse; brackets in strings and comments do not count.
// RUN: %python -c "print('module attributes {test.a = ' + '[' * 511 + ']' * 511 + ', test.b = \"' + '[' * 1000 + '\"} {}\n// ' + '(' * 1000)" > %t.ok.mlir
// RUN: fp-opt %t.ok.mlir | FileCheck %s --check-prefix=OK
// OK: module attributes {test.a = {{\[+}}
