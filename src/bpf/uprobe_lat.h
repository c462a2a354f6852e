/* SPDX-License-Identifier: GPL-2.0 */
/* What uprobe-lat's BPF side shares with user space: the per-call record and the histogram. */
#ifndef __UPROBE_LAT_H
#define __UPROBE_LAT_H

#define TASK_COMM_LEN 16
/* Nested calls timed per thread (recursion, or one traced function calling another). */
#define MAX_DEPTH 32
/* log2 slots of the in-kernel histogram: slot i holds [2^i, 2^(i+1)) units, the last one more. */
#define MAX_SLOTS 48

/* call_event.flags */
#define CALL_SLOW 1 /* at least --slower-than: comm is filled */

/* counters[] slots: calls that were seen but could not be timed or counted. */
#define CNT_TOO_DEEP 0   /* nested deeper than MAX_DEPTH */
#define CNT_UNWOUND 1    /* frames skipped by longjmp/exceptions: their returns never came */
#define CNT_HIST_FULL 2  /* the histogram map was full */
#define CNT_THREADS_FULL 3 /* the per-thread table was full */
#define NR_COUNTERS 4

/* One finished call (ring-buffer mode: every call; --kernel-hist: only slow ones). */
struct call_event {
	__u64 ts;      /* CLOCK_MONOTONIC ns of the return */
	__u64 lat_ns;
	__u32 pid;
	__u32 tid;
	__u32 func_id; /* the attach cookie: index into the user-space target list */
	__u32 flags;
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
