/* SPDX-License-Identifier: GPL-2.0 */
/* The maps kmemleak-lite's BPF side fills and user space reads at every report. */
#ifndef __KMEMLEAK_LITE_H
#define __KMEMLEAK_LITE_H

#define PERF_MAX_STACK_DEPTH 127

/*
 * Map sizes user space also needs (it resizes the maps before load, from --max-stacks): the
 * stack table's default size; the slots past it that the tables keyed by stack id keep for
 * bpf_get_stackid's negative errors (see combined_allocs); and ksites' entries (kernel call
 * sites recorded without their stacks).
 */
#define DEFAULT_MAX_STACKS 16384
#define STACK_ERROR_SLOTS 16
#define MAX_CALL_SITES 16384

/* allocs: address (or page frame number with --pages) -> one outstanding allocation. */
struct alloc_info {
	__u64 size;     /* bytes (requested in user mode, bytes_alloc in the kernel) */
	__u64 ts;       /* CLOCK_MONOTONIC ns of the allocation */
	__s64 stack_id; /* in stack_traces; see STACK_ID_CALL_SITE for the negative values */
};

/*
 * A negative stack_id is not in stack_traces. From -4095 to -1 it is bpf_get_stackid's error
 * (stack table full, hash collision): the stack was lost, and counted (LOSS_STACK_LOST).
 * Below, in kernel mode, it is a call site id: the allocation's call site (a kernel address,
 * whose top bits are all set), standing for the stack. Either its stack was not taken because
 * that call site, in that process, was over the --stacks-per-second budget; or it was lost
 * (counted as above), and then bit CALL_SITE_STACK_LOST is cleared. Such allocations are still
 * tracked, and totalled per call site.
 */
#define STACK_ID_CALL_SITE (-4096)
#define CALL_SITE_STACK_LOST (1ULL << 62)

/* combined (--combined): stack id -> what is outstanding from it. */
struct combined_info {
	__u64 bytes;
	__u64 count;
};

/*
 * Kernel mode, kstacks: allocation stack id -> what the report needs to judge that stack's
 * outstanding objects. `reused` counts its objects the kernel handed out again while still
 * listed: freed where no kmem tracepoint looks (bulk and RCU-batched frees), or a free missed
 * while the program was skipped. `cache` is the slab cache (kmem_cache_alloc on 6.1+), "" if
 * the tracepoint does not name it.
 */
#define CACHE_NAME_LEN 32
struct kstack_info {
	__u64 reused;
	char cache[CACHE_NAME_LEN];
};

/*
 * site_budgets (--stacks-per-second): an array slot per call site and process, picked by a hash
 * of the pair (2^BUDGET_SLOT_BITS slots); pairs that share a slot share its budget. An array,
 * not an LRU hash: nothing is ever evicted or refused, and stale slots just start a new second.
 */
#define BUDGET_SLOT_BITS 14
struct site_budget {
	__u64 window_start; /* CLOCK_MONOTONIC ns */
	__u64 taken;        /* stacks taken since */
};

/*
 * Slots of the shared `losses` counters (slot 0, the ring buffer, is common.bpf.h's and not
 * reported: the only records are user mode's rare loader_changed wake-ups, and a lost one only
 * delays reading the maps to the next report). Each is reported at exit with its own advice.
 */
#define LOSS_ALLOCS_FULL 1  /* allocation not tracked: the allocs table was full */
#define LOSS_STACK_LOST 2   /* allocation tracked without its stack: stack table full or collision */
#define LOSS_PENDING_FULL 3 /* user mode: allocator call not followed: the pending table was full */
#define LOSS_SAMPLE_LOST 4  /* user mode, --unwind dwarf: stack copy lost (ring buffer full) */

/*
 * User mode with --unwind dwarf (src/tools/kmemleak_lite/unwind.rs): no frame-pointer walk in
 * the kernel. At the allocator's return the program copies the registers an unwinder starts
 * from and the top of the user stack (from sp up, --stack-bytes, at most MAX_STACK_BYTES) into
 * a stack_sample record (user_stack.bpf.h); user space unwinds it with the binaries'
 * .eh_frame/.debug_frame. The
 * allocation's stack_id is then STACK_ID_SAMPLE | the record's seq. Over --stacks-per-second
 * (per call site, the return address, and process), or when the record could not be sent
 * (counted: LOSS_SAMPLE_LOST, and USER_SITE_LOST set), it is STACK_ID_USER_SITE | the return
 * address: the allocation is counted under its call site. Positive, and above any stack
 * table id; user addresses are below 2^56.
 */
#define STACK_ID_SAMPLE (1LL << 60)
#define STACK_ID_USER_SITE (1LL << 61)
#define USER_SITE_LOST (1LL << 59)

/* seq: a count per CPU above the CPU's number; an id keeps its low 59 bits (below
 * USER_SITE_LOST). */
#define SAMPLE_CPU_BITS 12
#define SAMPLE_CPU_MASK ((1ULL << SAMPLE_CPU_BITS) - 1)


#endif /* __KMEMLEAK_LITE_H */
