func.func @alpha_above_one() {
  "test.use"() {threshold = #fp.threshold<alpha = 1.5>} : () -> ()
  return
}
