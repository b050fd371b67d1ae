// Tells ThreadSanitizer, in a program built with it (the racecheck tests), which emulated CUDA thread runs
// and where CUDA orders memory between threads: __syncthreads, __syncwarp and a block's start and end do;
// shuffles, and threads of a block (or neighbouring blocks) running one after another here, do not.
// Accesses to shared or global memory that CUDA leaves unordered then get a data-race report, as
// compute-sanitizer's racecheck gives on a GPU for shared memory.
// In a program without ThreadSanitizer every call does nothing.
#pragma once

namespace glm4::emulated_cuda::race_detection {

/// Whether the program runs under ThreadSanitizer.
bool active();

/// Leaves the calling host thread's own accesses unrecorded from now on (once per thread; the main thread
/// from the program's start): only kernel threads race here, since a stream's work runs in order on the
/// thread that submits it, and recording the tests' host-side work would make them several times slower.
void ignore_host_thread();

/// ThreadSanitizer's record of the thread running now (the host thread's own outside a kernel), or null.
void* current_fiber();

/// A record for an emulated thread, kept by the calling host thread and reused by its later blocks (a
/// block's threads take slots parity x threads + thread, so neighbouring blocks never share one).
void* fiber_for_slot(unsigned slot);

/// Says that `to` runs from now on. With `ordered`, all the current one did happens before what `to` does
/// next (for unwinding a failed block's threads); without, the switch orders nothing, and only arrive and
/// leave do (the block's start, end and barriers).
void switch_to(void* to, bool ordered);

/// A thread arriving at `barrier` (release) and leaving it (acquire): what every arriving thread did
/// happens before what each leaving one does next.
void arrive(const void* barrier);
void leave(const void* barrier);

/// While alive, the running thread's memory accesses go unrecorded: for what the emulator itself does in a
/// kernel thread's stead (its scheduling records, the refill of shared memory), which is no kernel's doing.
class emulator_work {
 public:
  emulator_work();
  ~emulator_work();
  emulator_work(const emulator_work&) = delete;
  emulator_work& operator=(const emulator_work&) = delete;
};

}  // namespace glm4::emulated_cuda::race_detection
