func.func @sink_negative() {
  "test.use"() {threshold = #fp.threshold<sink = -1>} : () -> ()
  return
}
