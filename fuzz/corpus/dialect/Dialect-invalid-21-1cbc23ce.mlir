func.func @last_n_negative() {
  "test.use"() {threshold = #fp.threshold<last_n = -2>} : () -> ()
  return
}
