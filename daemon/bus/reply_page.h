// ReplyPage: one page of a List* reply, bounded in rows and in bytes
// (docs/ARCHITECTURE.md §9, "Bounded replies").
//
// A reply larger than the bus's message limit (dbus-daemon's max_message_size, 32 MiB by
// default) makes the bus drop the sender's connection, so no List* reply may grow
// without bound. Each page stops before its marshalled size would pass kMaxReplyBytes,
// a quarter of the bus limit, so fewer than `limit` rows may come back: the caller
// continues with `after` = the last row's uuid until a page comes back empty.
//
// Paging is by key over the list's stable order: a page starts after the row whose uuid
// is `after`; a uuid that names no row of the list is 4 (entry not found, naming
// `after`), as when that row was deleted between two pages.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/bus/bus_error.h"
#include "daemon/bus/options.h"

namespace svmkey::daemon {

// The bound of one reply's body, well under dbus-daemon's 32 MiB message limit.
inline constexpr size_t kMaxReplyBytes = size_t{4} << 20;

// An upper bound of the bytes `row` takes marshalled as one a{sv} element of an aa{sv}
// (alignment padding included).
size_t MarshalledBytes(const VariantMap& row);

class ReplyPage {
 public:
  // `max_bytes` is kMaxReplyBytes outside tests.
  explicit ReplyPage(size_t limit, size_t max_bytes = kMaxReplyBytes)
      : limit_(limit), max_bytes_(max_bytes) {}
  // Adds `row` unless the page is full by count or the row would take the reply past the
  // byte bound; false when it was not added (the caller stops: the page is complete).
  // The first row is always added: one row is far smaller than the bound.
  bool Add(VariantMap row);
  std::vector<VariantMap> Take() && { return std::move(rows_); }

 private:
  size_t limit_;
  size_t max_bytes_;
  size_t bytes_ = 8;  // the array's length and alignment
  std::vector<VariantMap> rows_;
};

// The index of the first row after the one whose uuid (`uuid_of(row)`, a string) is
// `after`; 0 without `after`. Throws 4 naming `after` when no row has that uuid.
template <typename Rows, typename UuidOf>
size_t FirstAfter(const Rows& rows, const std::optional<std::string>& after, UuidOf uuid_of) {
  if (!after) return 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (uuid_of(rows[i]) == *after) return i + 1;
  }
  Throw(ErrorCode::kEntryNotFound, "after: no row " + *after + " in this list");
}

// Fills a page with `to_map(rows[i])` from the row after `after` on (FirstAfter).
template <typename Rows, typename UuidOf, typename ToMap>
std::vector<VariantMap> PageOf(const Rows& rows, const std::optional<std::string>& after,
                               size_t limit, UuidOf uuid_of, ToMap to_map) {
  ReplyPage page(limit);
  for (size_t i = FirstAfter(rows, after, uuid_of); i < rows.size(); ++i) {
    if (!page.Add(to_map(rows[i]))) break;
  }
  return std::move(page).Take();
}

}  // namespace svmkey::daemon
