// The group.instance.id of a poller pod's pollers (app/poller_process.h).

#include "app/poller_process.h"

#include <catch2/catch.hpp>

using kesm::app::instanceIds;

TEST_CASE("instanceIds: the pod name alone for one poller, name-0 .. name-(n-1) for more",
          "[unit]") {
  struct Row {
    std::string id;
    int pollers;
    std::vector<std::string> expected;
  };
  const auto row = GENERATE(values<Row>({
      {.id = "orders-pollers-3", .pollers = 1, .expected = {"orders-pollers-3"}},
      {.id = "p", .pollers = 3, .expected = {"p-0", "p-1", "p-2"}},
      {.id = "", .pollers = 2, .expected = {"", ""}}, // no id: dynamic members only
  }));
  CHECK(instanceIds(row.id, row.pollers) == row.expected);
}
