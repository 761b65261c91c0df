func.func @window_zero() {
  "test.use"() {threshold = #fp.threshold<window = 0>} : () -> ()
  return
}
