#include "tests/kernels/emulated_cuda/fiber_block.hpp"

#include <sys/mman.h>

#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/kernels/emulated_cuda/race_detection.hpp"

namespace glm4::emulated_cuda {
namespace {

constexpr unsigned warp_size = 32;
constexpr unsigned no_shuffle = ~0u;
// Small stacks keep a block's threads within few pages (switching is most of the emulation's time);
// a guard page below each turns an overflow into a crash rather than a corrupted neighbour.
constexpr std::size_t fiber_stack_bytes = 64 * 1024;
constexpr std::size_t guard_bytes = 4096;
constexpr std::size_t max_shared_bytes = 48 * 1024;  // without cudaFuncSetAttribute, which we never call

enum class wait_state { runnable, block_barrier, warp_barrier, finished };

namespace ctx = boost::context;

// `bytes` of memory next to an inaccessible page, so that running off that end crashes at the access:
// above the memory for dynamic shared memory (a kernel overrunning what its launch asked for would
// otherwise corrupt the emulator), below it for fiber stacks (which grow down).
class guarded_memory {
 public:
  enum class guard_at { end, start };
  guarded_memory(std::size_t bytes, guard_at where) : bytes_(bytes) {
    void* p = mmap(nullptr, bytes + guard_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mapping_ = static_cast<char*>(p);
    memory_ = where == guard_at::start ? mapping_ + guard_bytes : mapping_;
    mprotect(where == guard_at::start ? mapping_ : mapping_ + bytes, guard_bytes, PROT_NONE);
  }
  guarded_memory(const guarded_memory&) = delete;
  guarded_memory& operator=(const guarded_memory&) = delete;
  ~guarded_memory() { munmap(mapping_, bytes_ + guard_bytes); }
  char* begin() const { return memory_; }
  char* end() const { return memory_ + bytes_; }

 private:
  std::size_t bytes_;
  char* mapping_ = nullptr;
  char* memory_ = nullptr;
};

struct guarded_stack : guarded_memory {
  guarded_stack() : guarded_memory(fiber_stack_bytes, guard_at::start) {}
};

// Hands out stacks kept for the life of the thread: a grid starts a fiber per CUDA thread, and fresh
// mappings for each would cost more than the kernels.
class reused_stacks {
 public:
  explicit reused_stacks(std::vector<std::unique_ptr<guarded_stack>>& pool, std::size_t index)
      : pool_(pool), index_(index) {}
  ctx::stack_context allocate() {
    while (pool_.size() <= index_) pool_.push_back(std::make_unique<guarded_stack>());
    ctx::stack_context stack;
    stack.size = fiber_stack_bytes;
    stack.sp = pool_[index_]->end();  // stacks grow down
    return stack;
  }
  void deallocate(ctx::stack_context&) noexcept {}

 private:
  std::vector<std::unique_ptr<guarded_stack>>& pool_;
  std::size_t index_;
};

struct fiber {
  ctx::fiber context;    // the suspended thread, while the scheduler runs
  ctx::fiber scheduler;  // the suspended scheduler, while this thread runs
  wait_state state = wait_state::runnable;
  uint3 index{};
};

// Lanes of one warp waiting at a barrier with the same mask (lanes may sync in disjoint groups).
struct warp_group {
  unsigned mask = 0;
  unsigned arrived = 0;
};

struct block_run {
  std::vector<fiber> fibers;
  unsigned current = 0;
  uint3 block{};
  dim3 block_shape;
  dim3 grid_shape;
  // Blocks alternate between two sets of everything a block's threads touch as their own: ThreadSanitizer
  // records, stacks, shared memory. So no block is ordered after the one just before it (below), and
  // accesses of two neighbouring blocks that CUDA leaves unordered are reported.
  unsigned parity = 0;
  unsigned first_slot = 0;                  // parity x threads: this block's records and stacks
  char* dynamic_shared_of[2] = {};          // each parity's bytes, against the thread's guard page
  std::size_t dynamic_shared_bytes = 0;
  std::vector<const void*> fresh_shared;  // static __shared__ storage already refilled for this block
  std::vector<std::uint64_t> shuffle_values;   // per thread: what it offers at a shuffle
  std::vector<unsigned> shuffle_sources;        // per thread: the lane it reads, or no_shuffle at a plain __syncwarp
  std::vector<std::uint64_t> shuffle_results;  // per thread: what it read, set when its group is released
  std::vector<std::vector<warp_group>> warp_waits;  // per warp
  // What ThreadSanitizer synchronises on (racecheck tests): __syncthreads, each warp's __syncwarp, and per
  // parity a block's start and end. The scheduler takes in the ends of the blocks of a parity before it
  // starts the next block of that parity, and a block's threads leave its start: so a block happens after
  // what came before the launch and every block before the last, and the kernel before what follows it.
  // (A block's threads start one by one, the first perhaps finished before the next starts: its start and
  // end are different objects, so that finishing orders nothing among the block's threads.)
  char parity_start[2] = {};
  char parity_end[2] = {};
  char block_barrier = 0;
  std::vector<char> warp_barriers;
  void* scheduler_race_fiber = nullptr;
  std::deque<unsigned> ready;                 // runnable threads, in the order they run
  const std::function<void()>* body = nullptr;
  std::exception_ptr failure;
};

thread_local block_run* active = nullptr;
thread_local std::vector<std::unique_ptr<guarded_stack>> stacks;
thread_local std::unique_ptr<guarded_memory> shared_memory[2];  // this thread's blocks' dynamic shared memory

block_run& running() {
  if (active == nullptr) throw std::logic_error("emulated CUDA: a device function was called outside a kernel");
  return *active;
}

void yield_to_scheduler() {
  block_run& run = running();
  fiber& self = run.fibers[run.current];
  race_detection::switch_to(run.scheduler_race_fiber, false);
  self.scheduler = std::move(self.scheduler).resume();
}

ctx::fiber start_thread(block_run& run, unsigned index) {
  const auto body = [&run, index](ctx::fiber&& scheduler) {
    run.fibers[index].scheduler = std::move(scheduler);
    race_detection::leave(&run.parity_start[run.parity]);
    try {
      (*run.body)();
    } catch (const ctx::detail::forced_unwind&) {
      throw;  // a suspended thread of an abandoned block is being unwound
    } catch (...) {
      const race_detection::emulator_work bookkeeping;
      if (!run.failure) run.failure = std::current_exception();
    }
    run.fibers[index].state = wait_state::finished;
    race_detection::arrive(&run.parity_end[run.parity]);
    race_detection::switch_to(run.scheduler_race_fiber, false);
    return std::move(run.fibers[index].scheduler);
  };
  return ctx::fiber(std::allocator_arg, reused_stacks(stacks, run.first_slot + index), body);
}

unsigned threads_of(const dim3& d) { return d.x * d.y * d.z; }

std::string describe_deadlock(const block_run& run) {
  unsigned at_block = 0, at_warp = 0, finished = 0;
  for (const fiber& f : run.fibers) {
    at_block += f.state == wait_state::block_barrier;
    at_warp += f.state == wait_state::warp_barrier;
    finished += f.state == wait_state::finished;
  }
  return "emulated CUDA: a __syncthreads or warp barrier not every thread reaches, in block (" +
         std::to_string(run.block.x) + "," + std::to_string(run.block.y) + "," + std::to_string(run.block.z) + "): " +
         std::to_string(at_block) + " threads at __syncthreads, " + std::to_string(at_warp) + " at a warp barrier, " +
         std::to_string(finished) + " finished";
}

// Runs the ready threads, and those they release from warp barriers, until each waits or finishes.
void run_phase(block_run& run) {
  while (!run.ready.empty()) {
    const unsigned i = run.ready.front();
    run.ready.pop_front();
    run.current = i;
    race_detection::switch_to(race_detection::fiber_for_slot(run.first_slot + i), false);
    run.fibers[i].context = std::move(run.fibers[i].context).resume();
  }
}

// Unwinds the threads a failed block leaves suspended, each as itself for ThreadSanitizer.
void abandon_suspended_threads(block_run& run) {
  for (unsigned i = 0; i < run.fibers.size(); ++i) {
    if (!run.fibers[i].context) continue;
    run.current = i;
    race_detection::switch_to(race_detection::fiber_for_slot(run.first_slot + i), true);
    run.fibers[i].context = ctx::fiber{};
    race_detection::switch_to(run.scheduler_race_fiber, true);
  }
}

// GLM4_EMULATED_SCHEDULE: a number that picks other thread and block orders (default 0), to search for
// races the default orders happen to hide.
std::uint64_t schedule_salt() {
  static const std::uint64_t salt = [] {
    const char* text = std::getenv("GLM4_EMULATED_SCHEDULE");
    if (text == nullptr || *text == '\0') return std::uint64_t{0};
    char* end = nullptr;
    const std::uint64_t value = std::strtoull(text, &end, 10);
    if (*end != '\0' || *text == '-')
      throw std::invalid_argument(std::string("GLM4_EMULATED_SCHEDULE is '") + text + "': give a whole number");
    return value;
  }();
  return salt;
}

// Thread order for a phase: ascending, or a shuffle fixed by the block and phase. Descending alone would
// hide barrier-less tree reductions, which happen to be correct when run from the last thread down.
void order_threads(std::vector<unsigned>& order, std::uint64_t block_number, unsigned phase) {
  std::iota(order.begin(), order.end(), 0u);
  const std::uint64_t salt = schedule_salt();
  if ((block_number + phase + salt) % 2 == 0) return;
  std::mt19937_64 random(block_number * 1000003u + phase + salt * 0x9E3779B97F4A7C15ull);
  std::shuffle(order.begin(), order.end(), random);
}

void run_block(block_run& run, std::uint64_t block_number) {
  const unsigned count = threads_of(run.block_shape);
  run.fibers.clear();
  run.fibers.resize(count);
  run.shuffle_values.assign(count, 0);
  run.shuffle_sources.assign(count, 0);
  run.shuffle_results.assign(count, 0);
  run.warp_waits.assign((count + warp_size - 1) / warp_size, {});
  run.warp_barriers.assign(run.warp_waits.size(), 0);
  run.parity = static_cast<unsigned>(block_number % 2);
  run.first_slot = run.parity * count;
  race_detection::leave(&run.parity_end[run.parity]);
  race_detection::arrive(&run.parity_start[run.parity]);
  std::memset(run.dynamic_shared_of[run.parity], 0xFF, run.dynamic_shared_bytes);  // NaN until written
  run.fresh_shared.clear();
  for (unsigned i = 0; i < count; ++i) {
    fiber& f = run.fibers[i];
    f.index = {i % run.block_shape.x, i / run.block_shape.x % run.block_shape.y,
               i / (run.block_shape.x * run.block_shape.y)};
    f.context = start_thread(run, i);
  }
  std::vector<unsigned> order(count);
  for (unsigned phase = 0;; ++phase) {
    order_threads(order, block_number, phase);
    for (const unsigned i : order)
      if (run.fibers[i].state == wait_state::runnable) run.ready.push_back(i);
    run_phase(run);
    if (run.failure) std::rethrow_exception(run.failure);
    const bool all_finished = std::all_of(run.fibers.begin(), run.fibers.end(),
                                          [](const fiber& f) { return f.state == wait_state::finished; });
    if (all_finished) return;
    // CUDA leaves a __syncthreads that some threads skip or exit before undefined: refuse it.
    const bool all_at_block_barrier = std::all_of(run.fibers.begin(), run.fibers.end(),
                                                  [](const fiber& f) { return f.state == wait_state::block_barrier; });
    if (!all_at_block_barrier) throw std::runtime_error(describe_deadlock(run));
    for (fiber& f : run.fibers)
      if (f.state == wait_state::block_barrier) f.state = wait_state::runnable;
  }
}

}  // namespace

const char* invalid_launch_reason(const launch_shape& shape) {
  const dim3& g = shape.grid;
  const dim3& b = shape.block;
  if (g.x == 0 || g.y == 0 || g.z == 0) return "a grid dimension is 0";
  if (g.x > 2147483647u || g.y > 65535u || g.z > 65535u) return "a grid dimension is past its limit";
  if (b.x == 0 || b.y == 0 || b.z == 0) return "a block dimension is 0";
  if (b.x > 1024u || b.y > 1024u || b.z > 64u || std::uint64_t{b.x} * b.y * b.z > 1024u)
    return "more than 1024 threads in a block";
  if (shape.dynamic_shared_bytes > max_shared_bytes) return "more than 48 KiB of dynamic shared memory";
  return nullptr;
}

void run_grid(const launch_shape& shape, const std::function<void()>& body) {
  if (const char* reason = invalid_launch_reason(shape)) throw std::invalid_argument(reason);
  if (active != nullptr) throw std::logic_error("emulated CUDA: a kernel launched from inside a kernel");
  block_run run;
  run.block_shape = shape.block;
  run.grid_shape = shape.grid;
  run.body = &body;
  race_detection::ignore_host_thread();
  run.scheduler_race_fiber = race_detection::current_fiber();
  for (unsigned parity = 0; parity < 2; ++parity) {
    std::unique_ptr<guarded_memory>& memory = shared_memory[parity];
    if (!memory) memory = std::make_unique<guarded_memory>(max_shared_bytes, guarded_memory::guard_at::end);
    // Ending at the guard page, 16-byte aligned as CUDA aligns it.
    run.dynamic_shared_of[parity] = memory->end() - (shape.dynamic_shared_bytes + 15) / 16 * 16;
  }
  run.dynamic_shared_bytes = shape.dynamic_shared_bytes;
  active = &run;
  struct reset_active {
    ~reset_active() { active = nullptr; }
  } reset;
  // Blocks run one after another: ascending, or (GLM4_EMULATED_SCHEDULE) in a shuffled order, so a kernel
  // that counts on one block running before another fails under some schedule.
  std::vector<uint3> blocks;
  for (unsigned z = 0; z < shape.grid.z; ++z)
    for (unsigned y = 0; y < shape.grid.y; ++y)
      for (unsigned x = 0; x < shape.grid.x; ++x) blocks.push_back({x, y, z});
  if (schedule_salt() != 0) {
    std::mt19937_64 random(schedule_salt());
    std::shuffle(blocks.begin(), blocks.end(), random);
  }
  std::uint64_t block_number = 0;
  for (const uint3& block : blocks) {
    run.block = block;
    try {
      run_block(run, block_number++);
    } catch (...) {
      abandon_suspended_threads(run);
      throw;
    }
  }
  race_detection::leave(&run.parity_end[0]);  // the kernel happens before what follows it
  race_detection::leave(&run.parity_end[1]);
}

const uint3& thread_index() {
  block_run& run = running();
  return run.fibers[run.current].index;
}
const uint3& block_index() { return running().block; }
const dim3& block_dim() { return running().block_shape; }
const dim3& grid_dim() { return running().grid_shape; }
unsigned block_parity() { return running().parity; }
void* dynamic_shared_memory() {
  const block_run& run = running();
  return run.dynamic_shared_of[run.parity];
}

void expect_within_launch_bound(unsigned max_threads) {
  const unsigned threads = threads_of(running().block_shape);
  if (threads > max_threads)
    throw launch_refused(std::to_string(threads) + " threads per block, more than its __launch_bounds__ (" +
                         std::to_string(max_threads) +
                         "): a GPU refuses the launch (cudaErrorLaunchOutOfResources)");
}

void note_static_shared_memory(void* storage, std::size_t bytes) {
  block_run& run = running();
  if (std::find(run.fresh_shared.begin(), run.fresh_shared.end(), storage) != run.fresh_shared.end()) return;
  run.fresh_shared.push_back(storage);
  const race_detection::emulator_work refill;
  std::memset(storage, 0xFF, bytes);
}
unsigned lane_id() { return running().current % warp_size; }

void sync_threads() {
  const race_detection::emulator_work bookkeeping;
  block_run& run = running();
  race_detection::arrive(&run.block_barrier);
  run.fibers[run.current].state = wait_state::block_barrier;
  yield_to_scheduler();
  race_detection::leave(&run.block_barrier);
}

namespace {

// A lane arrives at a warp barrier (source_lane is no_shuffle for __syncwarp). The last lane of the group
// to arrive hands every lane its shuffle result, so lanes read them without a second barrier. Only a
// __syncwarp orders the lanes' memory accesses: CUDA promises no memory ordering for shuffles.
void arrive_at_warp_barrier(unsigned mask, unsigned source_lane) {
  const race_detection::emulator_work bookkeeping;  // the run queue and warp groups, shared with the scheduler
  block_run& run = running();
  const unsigned self = run.current;
  const unsigned lane = self % warp_size;
  const unsigned base = self - lane;
  if ((mask >> lane & 1u) == 0) throw std::runtime_error("emulated CUDA: a warp barrier whose mask omits its caller");
  if (base + warp_size > run.fibers.size() && (mask >> (run.fibers.size() - base)) != 0)
    throw std::runtime_error("emulated CUDA: a warp mask names lanes past the end of the block");
  if (source_lane != no_shuffle && (source_lane >= warp_size || (mask >> source_lane & 1u) == 0))
    throw std::runtime_error("emulated CUDA: a shuffle reads a lane outside its mask");
  run.shuffle_sources[self] = source_lane;
  const bool orders_memory = source_lane == no_shuffle;
  const char* warp_barrier = &run.warp_barriers[self / warp_size];
  if (orders_memory) race_detection::arrive(warp_barrier);
  std::vector<warp_group>& groups = run.warp_waits[self / warp_size];
  auto group = std::find_if(groups.begin(), groups.end(), [&](const warp_group& g) { return g.mask == mask; });
  if (group == groups.end()) group = groups.insert(groups.end(), warp_group{mask, 0});
  group->arrived |= 1u << lane;
  if (group->arrived != mask) {
    run.fibers[self].state = wait_state::warp_barrier;
    yield_to_scheduler();  // the last lane to arrive releases this one
    if (orders_memory) race_detection::leave(warp_barrier);
    return;
  }
  if (orders_memory) race_detection::leave(warp_barrier);
  groups.erase(group);
  for (unsigned other = 0; other < warp_size; ++other)
    if ((mask >> other & 1u) != 0 && (run.shuffle_sources[base + other] == no_shuffle) != (source_lane == no_shuffle))
      throw std::runtime_error("emulated CUDA: lanes of one mask meet at a shuffle and a __syncwarp");
  for (unsigned other = 0; other < warp_size; ++other) {
    if ((mask >> other & 1u) == 0) continue;
    const unsigned source = run.shuffle_sources[base + other];
    if (source != no_shuffle) run.shuffle_results[base + other] = run.shuffle_values[base + source];
    if (other == lane) continue;
    run.fibers[base + other].state = wait_state::runnable;
    run.ready.push_back(base + other);
  }
}

}  // namespace

void sync_warp(unsigned mask) { arrive_at_warp_barrier(mask, no_shuffle); }

std::uint64_t exchange_in_warp(unsigned mask, std::uint64_t value, unsigned source_lane) {
  block_run& run = running();
  run.shuffle_values[run.current] = value;
  arrive_at_warp_barrier(mask, source_lane);
  return run.shuffle_results[run.current];
}

}  // namespace glm4::emulated_cuda
