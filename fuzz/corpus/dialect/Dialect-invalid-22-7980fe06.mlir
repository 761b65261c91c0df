func.func @min_budget_negative() {
  "test.use"() {threshold = #fp.threshold<min_budget = -3>} : () -> ()
  return
}
