// The actors of one process: a device actor per rank of every pipeline stage, over executors that
// own the model shards and KV pages, and the scheduler actor whose engine steps through them.
// serve, generate and bench run this; tests run it over fake executors.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/device_actor.hpp"
#include "actors/scheduler_actor.hpp"

namespace glm4::actors {

/// The CAF settings every glm4 actor system uses: our message types, no log file.
struct actor_config : caf::actor_system_config {
  actor_config();
};

/// One rank's executor and what its peers need when it goes down.
struct device_slot {
  std::shared_ptr<engine::step_executor> executor;
  /// Aborts the collectives of the rank's stage; empty for a rank without peers.
  std::function<void(const std::string& why)> abort_peers;
  /// The rank has peers but no group yet: at start the runtime asks the stage's rank 0 for a
  /// group id and hands every rank its ticket in a message (set on every rank of the stage).
  bool joins_group = false;
};

/// [stage][tensor-parallel rank]; stages in pipeline order, rank 0 first.
using device_layout = std::vector<std::vector<device_slot>>;

class local_runtime {
 public:
  /// `board` may be null. The tokenizer (may be null) outlives the runtime. `layout_name`
  /// names the devices in errors ("cpu", "2 stages x 2 cpu ranks"). The scheduler plans ahead
  /// (scheduler_actor_config::plan_ahead) when the layout has one stage, unless `plan_ahead` is
  /// false. Returns once the stages that join their groups at start have joined them, and the
  /// scheduler has sized the KV pool from the devices' reports and they have allocated it;
  /// throws std::runtime_error with the reason when any of it could not be done.
  local_runtime(device_layout layout, const engine::engine_config& config, const model::tokenizer* tokenizer,
                status_board* board, std::size_t max_queued_requests, std::string layout_name, bool plan_ahead = true);
  /// One device.
  local_runtime(std::shared_ptr<engine::step_executor> device_executor, const engine::engine_config& config,
                const model::tokenizer* tokenizer, status_board* board, std::size_t max_queued_requests,
                std::string device_name);
  ~local_runtime();

  caf::actor_system& system() { return system_; }
  const caf::actor& scheduler() const { return scheduler_; }
  /// Every device actor, stage by stage, rank 0 first.
  const std::vector<caf::actor>& devices() const { return devices_; }
  /// The pool every device holds, and the max_model_len it allows.
  const engine::kv_pool_size& kv_pool() const { return kv_pool_; }

  /// Stops every actor and waits for them. CAF 0.17 joins a detached actor's thread only once no
  /// handle to it is left, so every handle is dropped here, the caller's must be too.
  void shutdown();

 private:
  actor_config config_;
  caf::actor_system system_;
  std::vector<caf::actor> devices_;
  engine::llm_engine engine_;
  caf::actor scheduler_;
  engine::kv_pool_size kv_pool_;
};

}  // namespace glm4::actors
