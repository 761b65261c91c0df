//===- fuzz_tuning_db.cpp - The tuning-database loader on arbitrary bytes -===//
//
// SPDX-License-Identifier: Apache-2.0
//
// fp::tuning::TuningDatabase::parse() reads fp-tune's JSON (the file may be
// corrupt, foreign or truncated: it is then ignored with a warning). The
// bytes are the file. Invariants: no crash; a rejected file gives an empty
// database and a warning naming the source; an accepted one survives a
// round trip (toJson -> parse gives the same entries, no warning) and every
// entry's key finds a best config. The config-text parser (select-tiles
// options) gets the same bytes.
//
//===----------------------------------------------------------------------===//
#include "FuzzInput.h"

#include "fp/Compiler/TuningDatabase.h"

#include <string>

using namespace fp::tuning;

namespace {

bool sameEntry(const TuningEntry &a, const TuningEntry &b) {
  return a.key == b.key && a.kernel == b.kernel && a.config == b.config &&
         a.ms == b.ms && a.device == b.device &&
         (a.density == b.density || (a.density < 0 && b.density < 0));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string text(reinterpret_cast<const char *>(data), size);
  TuningDatabase db = TuningDatabase::parse(text, "<fuzz>");
  if (!db.warning().empty()) {
    FP_FUZZ_CHECK(db.entries().empty(), "entries kept from an ignored file");
    FP_FUZZ_CHECK(db.warning().find("<fuzz>") != std::string::npos,
                  db.warning());
  } else {
    std::string json = db.toJson();
    TuningDatabase again = TuningDatabase::parse(json, "<round trip>");
    FP_FUZZ_CHECK(again.warning().empty(),
                  again.warning() + "\n--- written:\n" + json);
    FP_FUZZ_CHECK(again.entries().size() == db.entries().size(), json);
    for (size_t i = 0; i < db.entries().size(); ++i)
      FP_FUZZ_CHECK(sameEntry(db.entries()[i], again.entries()[i]), json);
    for (const TuningEntry &e : db.entries()) {
      std::optional<TuningEntry> best = db.best(e.key, e.kernel);
      FP_FUZZ_CHECK(best && best->ms <= e.ms, "best() missed an entry");
      FP_FUZZ_CHECK(parseConfigText(configText(e.config), e.config.size()) ==
                        std::optional<std::vector<int64_t>>(e.config),
                    configText(e.config));
    }
  }
  for (size_t fields : {size_t(2), size_t(4)})
    if (auto config = parseConfigText(text, fields)) {
      FP_FUZZ_CHECK(config->size() == fields, text);
      for (int64_t v : *config)
        FP_FUZZ_CHECK(v > 0, text);
    }
  return 0;
}
