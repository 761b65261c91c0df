//===- PtxasReport.cpp - Parse `ptxas -v` resource reports ----------------===//
//
// SPDX-License-Identifier: Apache-2.0
//
// ptxas (run inside NVRTC with -Xptxas -v) prints, per entry function:
//   ptxas info    : Compiling entry function 'k' for 'sm_90a'
//   ptxas info    : Function properties for k
//   ptxas         .     0 bytes stack frame, 0 bytes spill stores, ...
//   ptxas info    : Used 13 registers, used 1 barriers, 4096 bytes smem, ...
// and, after the entries, "Function properties" blocks for non-inlined device
// functions. The "Used" line belongs to the last "Compiling entry function";
// a properties line belongs to the last "Function properties for". The item
// lists are parsed as "<number> <unit>" pairs so that added or reordered
// items (cmem banks, cumulative stack) do not break the parser.
//
//===----------------------------------------------------------------------===//
#include "flashprefill/runtime/nvrtc.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace fp {
namespace rt {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

/// The text between the first pair of single quotes at or after `from`.
std::string_view quoted(std::string_view s, size_t from, size_t *end) {
  size_t open = s.find('\'', from);
  if (open == std::string_view::npos)
    return {};
  size_t close = s.find('\'', open + 1);
  if (close == std::string_view::npos)
    return {};
  *end = close + 1;
  return s.substr(open + 1, close - open - 1);
}

/// Applies "Used 13 registers, used 1 barriers, 4096 bytes smem" or
/// "0 bytes stack frame, 8 bytes spill stores" items to `report`.
void applyItems(std::string_view items, KernelResourceReport &report) {
  while (!items.empty()) {
    size_t comma = items.find(',');
    std::string_view item = trim(items.substr(0, comma));
    items = comma == std::string_view::npos ? std::string_view()
                                            : items.substr(comma + 1);
    if (startsWith(item, "Used ") || startsWith(item, "used "))
      item.remove_prefix(5);
    size_t digits = 0;
    while (digits < item.size() &&
           std::isdigit(static_cast<unsigned char>(item[digits])))
      ++digits;
    if (digits == 0)
      continue;
    long value =
        std::strtol(std::string(item.substr(0, digits)).c_str(), nullptr, 10);
    std::string_view unit = trim(item.substr(digits));
    if (unit == "registers")
      report.registers = int(value);
    else if (unit == "barriers")
      report.barriers = int(value);
    else if (unit == "bytes smem")
      report.sharedMemBytes = value;
    else if (unit == "bytes stack frame")
      report.stackFrameBytes = value;
    else if (unit == "bytes spill stores")
      report.spillStoreBytes = value;
    else if (unit == "bytes spill loads")
      report.spillLoadBytes = value;
    else if (unit == "bytes cumulative stack size")
      report.cumulativeStackBytes = value;
    else if (unit == "bytes cmem[0]")
      report.constMemBytes = value;
    // Other units (gmem, cmem[N>0], lmem of old ptxas) are not reported.
  }
}

} // namespace

std::vector<KernelResourceReport> parsePtxasReport(std::string_view log) {
  std::vector<KernelResourceReport> reports;
  // Indices, not pointers: `reports` grows.
  long currentEntry = -1, propertiesTarget = -1;
  auto findOrAdd = [&](std::string_view name) -> long {
    for (size_t i = 0; i < reports.size(); ++i)
      if (reports[i].kernel == name)
        return long(i);
    KernelResourceReport report;
    report.kernel = std::string(name);
    reports.push_back(std::move(report));
    return long(reports.size() - 1);
  };

  while (!log.empty()) {
    size_t newline = log.find('\n');
    std::string_view line = log.substr(0, newline);
    log = newline == std::string_view::npos ? std::string_view()
                                            : log.substr(newline + 1);
    if (!startsWith(line, "ptxas"))
      continue;
    size_t colon = line.find(':');
    std::string_view body =
        trim(colon == std::string_view::npos ? std::string_view()
                                             : line.substr(colon + 1));
    if (startsWith(body, "Compiling entry function")) {
      size_t end = 0;
      std::string_view name = quoted(body, 0, &end);
      std::string_view arch = quoted(body, end, &end);
      currentEntry = findOrAdd(name);
      reports[currentEntry].isEntry = true;
      reports[currentEntry].arch = std::string(arch);
      propertiesTarget = -1;
    } else if (startsWith(body, "Function properties for ")) {
      propertiesTarget =
          findOrAdd(trim(body.substr(sizeof("Function properties for ") - 1)));
    } else if (startsWith(body, "Used ")) {
      if (currentEntry >= 0)
        applyItems(body, reports[currentEntry]);
    } else if (colon == std::string_view::npos) {
      // "ptxas         .     0 bytes stack frame, ...": no colon.
      std::string_view rest = trim(line.substr(sizeof("ptxas") - 1));
      if (startsWith(rest, ".") && propertiesTarget >= 0)
        applyItems(trim(rest.substr(1)), reports[propertiesTarget]);
    }
  }
  std::stable_partition(
      reports.begin(), reports.end(),
      [](const KernelResourceReport &r) { return r.isEntry; });
  return reports;
}

} // namespace rt
} // namespace fp
