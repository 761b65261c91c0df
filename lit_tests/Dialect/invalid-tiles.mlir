// RUN: fp-opt %s -split-input-file -verify-diagnostics -allow-unregistered-dialect

// Tile attributes reject what no kernel can build (the rules fp-select-tiles
// applies too, fp/Dialect/TileRules.h): zero, negative or huge tiles used to
// reach convert-fp-to-emitc and give __launch_bounds__(0, 1), kernel names
// like _t-32 and negative shared memory in the manifest.

func.func @pool_threads_zero() {
  // expected-error @+1 {{#fp.pool_tile threads: expected a multiple of 32 in [32, 1024], got 0}}
  "test.use"() {tile = #fp.pool_tile<threads = 0>} : () -> ()
  return
}

// -----

func.func @pool_threads_negative() {
  // expected-error @+1 {{#fp.pool_tile threads: expected a multiple of 32 in [32, 1024], got -32}}
  "test.use"() {tile = #fp.pool_tile<threads = -32>} : () -> ()
  return
}

// -----

func.func @pool_threads_huge() {
  // expected-error @+1 {{#fp.pool_tile threads: expected a multiple of 32 in [32, 1024], got 4294967296}}
  "test.use"() {tile = #fp.pool_tile<threads = 4294967296>} : () -> ()
  return
}

// -----

func.func @discovery_key_chunk_zero() {
  // expected-error @+1 {{#fp.discovery_tile key_chunk: expected a multiple of 16 in [16, 256], got 0}}
  "test.use"() {tile = #fp.discovery_tile<key_chunk = 0, warps = 4>} : () -> ()
  return
}

// -----

func.func @discovery_key_chunk_negative() {
  // expected-error @+1 {{#fp.discovery_tile key_chunk: expected a multiple of 16 in [16, 256], got -64}}
  "test.use"() {tile = #fp.discovery_tile<key_chunk = -64, warps = 4>} : () -> ()
  return
}

// -----

func.func @discovery_warps_not_power_of_two() {
  // expected-error @+1 {{#fp.discovery_tile warps: expected a power of two in [1, 16], got 3}}
  "test.use"() {tile = #fp.discovery_tile<key_chunk = 64, warps = 3>} : () -> ()
  return
}

// -----

func.func @discovery_warps_huge() {
  // expected-error @+1 {{#fp.discovery_tile warps: expected a power of two in [1, 16], got 9223372036854775807}}
  "test.use"() {tile = #fp.discovery_tile<key_chunk = 64, warps = 9223372036854775807>} : () -> ()
  return
}

// -----

func.func @attention_block_m_zero() {
  // expected-error @+1 {{#fp.attention_tile block_m: expected a power of two in [16, 256], got 0}}
  "test.use"() {tile = #fp.attention_tile<block_m = 0, block_n = 64, warps = 4, stages = 2>} : () -> ()
  return
}

// -----

func.func @attention_block_m_not_power_of_two() {
  // expected-error @+1 {{#fp.attention_tile block_m: expected a power of two in [16, 256], got 96}}
  "test.use"() {tile = #fp.attention_tile<block_m = 96, block_n = 64, warps = 6, stages = 2>} : () -> ()
  return
}

// -----

func.func @attention_block_n_negative() {
  // expected-error @+1 {{#fp.attention_tile block_n: expected a power of two in [16, 256], got -32}}
  "test.use"() {tile = #fp.attention_tile<block_m = 128, block_n = -32, warps = 4, stages = 2>} : () -> ()
  return
}

// -----

func.func @attention_block_n_huge() {
  // expected-error @+1 {{#fp.attention_tile block_n: expected a power of two in [16, 256], got 1099511627776}}
  "test.use"() {tile = #fp.attention_tile<block_m = 128, block_n = 1099511627776, warps = 4, stages = 2>} : () -> ()
  return
}

// -----

func.func @attention_warps_zero() {
  // expected-error @+1 {{#fp.attention_tile warps: expected 1 to 16, got 0}}
  "test.use"() {tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 0, stages = 2>} : () -> ()
  return
}

// -----

func.func @attention_warps_too_many() {
  // expected-error @+1 {{#fp.attention_tile warps: expected 1 to 16, got 32}}
  "test.use"() {tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 32, stages = 2>} : () -> ()
  return
}

// -----

func.func @attention_stages_one() {
  // expected-error @+1 {{#fp.attention_tile stages: expected 2 to 8, got 1}}
  "test.use"() {tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 4, stages = 1>} : () -> ()
  return
}

// -----

func.func @attention_stages_negative() {
  // expected-error @+1 {{#fp.attention_tile stages: expected 2 to 8, got -2}}
  "test.use"() {tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 4, stages = -2>} : () -> ()
  return
}

// -----

// The op verifiers check the tile against the op's block size: a CTA reads
// one mask row, so both tile sizes divide the block.
func.func @attention_block_m_exceeds_block(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>,
                                           %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) {
  // expected-error @+1 {{#fp.attention_tile block_m: expected a divisor of block_size 64, got 128}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {block_size = 64 : i64, tile = #fp.attention_tile<block_m = 128, block_n = 64, warps = 4, stages = 2>} : (tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}

// -----

func.func @attention_block_n_exceeds_block(%q: tensor<?x?x8x64xbf16>, %k: tensor<?x?x8x64xbf16>, %v: tensor<?x?x8x64xbf16>,
                                           %c: tensor<?x8x?xi32>, %i: tensor<?x8x?x?xi32>) {
  // expected-error @+1 {{#fp.attention_tile block_n: expected a divisor of block_size 64, got 256}}
  %o, %l = fp.masked_attention %q, %k, %v, %c, %i {block_size = 64 : i64, tile = #fp.attention_tile<block_m = 64, block_n = 256, warps = 4, stages = 2>} : (tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x?x8x64xbf16>, tensor<?x8x?xi32>, tensor<?x8x?x?xi32>) -> (tensor<?x?x8x64xbf16>, tensor<?x8x?xf32>)
  return
}

// -----

func.func @discovery_warps_exceed_block(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  // expected-error @+1 {{#fp.discovery_tile warps: expected 1 to 16 warps with block_size 64 a multiple of 16 * warps, got 8}}
  %c, %i = fp.pattern_discovery %q, %kbar {block_size = 64 : i64, threshold = #fp.threshold<>, tile = #fp.discovery_tile<key_chunk = 64, warps = 8>} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> (tensor<?x8x?xi32>, tensor<?x8x?x?xi32>)
  return
}
