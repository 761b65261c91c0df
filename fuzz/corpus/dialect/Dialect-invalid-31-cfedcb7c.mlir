func.func @score_pooled_query_layout(%q: tensor<?x?x8x64xbf16>, %kbar: tensor<?x4x?x64xbf16>) {
  %s = fp.block_score %q, %kbar {query_kind = #fp<query_kind pooled>} : (tensor<?x?x8x64xbf16>, tensor<?x4x?x64xbf16>) -> tensor<?x8x?x?xf32>
  return
}
