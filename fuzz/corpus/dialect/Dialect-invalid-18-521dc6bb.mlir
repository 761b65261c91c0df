func.func @alpha_negative() {
  "test.use"() {threshold = #fp.threshold<alpha = -0.1>} : () -> ()
  return
}
