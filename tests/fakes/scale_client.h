#pragma once

// A fake of k8s::ScaleClient (k8s/statefulset_scale.h) for the pods pool's unit tests: a
// StatefulSet's Scale held in memory, failures the test queues, every call recorded.
// Single-threaded unless the test says otherwise.

#include "k8s/statefulset_scale.h"

#include <deque>
#include <string>
#include <vector>

namespace kesm::fakes {

class FakeScaleClient final : public k8s::ScaleClient {
public:
  struct Server {
    int spec = 0;
    int pods = 0; // status.replicas
    int version = 1;
    bool exists = true;
    std::deque<k8s::ScaleOutcome> get_failures; // the next get()s fail with these
    std::deque<k8s::ScaleOutcome> set_failures; // the next set()s fail with these
    std::vector<std::string> calls;             // "get", "set 3"
  };

  explicit FakeScaleClient(Server& server) : server_(server) {}

  k8s::ScaleCallResult get() override {
    server_.calls.push_back("get");
    if (!server_.get_failures.empty()) {
      return failure(server_.get_failures, "GET");
    }
    if (!server_.exists) {
      return notFound("GET");
    }
    return current();
  }

  k8s::ScaleCallResult set(int replicas) override {
    server_.calls.push_back("set " + std::to_string(replicas));
    if (!server_.set_failures.empty()) {
      return failure(server_.set_failures, "PUT");
    }
    if (!server_.exists) {
      return notFound("PUT");
    }
    server_.spec = replicas;
    ++server_.version;
    return current();
  }

  std::string describe() const override { return "ns/pollers"; }

private:
  k8s::ScaleCallResult current() {
    k8s::ScaleCallResult r;
    r.outcome = k8s::ScaleOutcome::kOk;
    r.scale = k8s::ScaleState{server_.spec, server_.pods, "app=p", std::to_string(server_.version)};
    r.message = "ok";
    return r;
  }
  static k8s::ScaleCallResult failure(std::deque<k8s::ScaleOutcome>& queue, const char* method) {
    k8s::ScaleCallResult r;
    r.outcome = queue.front();
    queue.pop_front();
    r.message = std::string(method) + " ns/pollers: " + k8s::toString(r.outcome);
    return r;
  }
  static k8s::ScaleCallResult notFound(const char* method) {
    k8s::ScaleCallResult r;
    r.outcome = k8s::ScaleOutcome::kNotFound;
    r.message = std::string(method) + " ns/pollers: not_found";
    return r;
  }

  Server& server_;
};

} // namespace kesm::fakes
