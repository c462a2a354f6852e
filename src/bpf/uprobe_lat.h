/* SPDX-License-Identifier: GPL-2.0 */
/* What uprobe-lat's BPF side shares with user space: the per-call record and the histogram. */
#ifndef __UPROBE_LAT_H
#define __UPROBE_LAT_H

#include "task.h"
/* Nested calls timed per thread (recursion, or one traced function calling another). */
#define MAX_DEPTH 32
/* Program pairs for kernels without attach cookies: functions timed at once there. */
#define NO_COOKIE_PROGS 64
/* log2 slots of the in-kernel histogram: slot i holds [2^i, 2^(i+1)) units, the last one more. */
#define MAX_SLOTS 48

/* call_event.flags */
#define CALL_SLOW 1 /* at least --slower-than (comm is filled for these, and with --per-pid) */
#define CALL_STACK 2 /* --stack: the call's stack_sample (user_stack.bpf.h) was sent just before */

/* --stack: stack_sample.seq is this bit | the thread id. A call_event's second word, lat_ns,
 * never has it set (that would be 292 years), so the two records are told apart there. */
#define SLOW_STACK_SEQ (1ULL << 63)

/*
 * Slots of the shared `losses` map (common.bpf.h; slot 0 is the ring buffer): calls that were
 * made but are not in any histogram. Described for users by LOSSES in src/tools/uprobe_lat.
 */
#define LOSS_TOO_DEEP 1	    /* nested deeper than MAX_DEPTH: entry seen, not timed */
#define LOSS_UNWOUND 2	    /* skipped by longjmp/an exception, or the thread exited inside it */
#define LOSS_HIST_FULL 3    /* --kernel-hist --per-pid: the histogram table was full */
#define LOSS_THREADS_FULL 4 /* the per-thread table (--max-threads) was full */
#define LOSS_STACK_LOST 5   /* --stack: a slow call shown without its stack (no room to send it) */

/* One finished call (ring-buffer mode: every call; --kernel-hist: only slow ones). */
struct call_event {
	__u64 ts;      /* CLOCK_MONOTONIC ns of the return */
	__u64 lat_ns;
	__u32 pid;
	__u32 tid;
	__u32 func_id; /* index into the user-space target list (the attach cookie, or the program's) */
	__u32 flags;
	__u64 start_ns; /* --per-pid: when the process began, to tell a reused pid from its past owner */
	__u64 cgroup_id; /* the caller's cgroup (common.bpf.h: task_cgroup_id) */
	char comm[TASK_COMM_LEN];
};

/* --kernel-hist --per-pid: one histogram per function, pid and epoch (without --per-pid, an
 * array indexed by func_id * 2 + epoch holds them). */
struct hist_key {
	__u32 func_id;
	__u32 pid;
	__u32 epoch; /* flipped by user space at each interval, so it reads a histogram at rest */
	__u32 pad;
};

struct hist_value {
	__u64 slots[MAX_SLOTS];
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
};

#endif /* __UPROBE_LAT_H */
