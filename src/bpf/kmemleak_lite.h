/* SPDX-License-Identifier: GPL-2.0 */
/* The maps kmemleak-lite's BPF side fills and user space reads at every report. */
#ifndef __KMEMLEAK_LITE_H
#define __KMEMLEAK_LITE_H

#define PERF_MAX_STACK_DEPTH 127

/* allocs: address (or page frame number with --pages) -> one outstanding allocation. */
struct alloc_info {
	__u64 size;     /* bytes (requested in user mode, bytes_alloc in the kernel) */
	__u64 ts;       /* CLOCK_MONOTONIC ns of the allocation */
	__s64 stack_id; /* in stack_traces; negative: the stack could not be recorded */
};

/* combined (--combined): stack id -> what is outstanding from it. */
struct combined_info {
	__u64 bytes;
	__u64 count;
};

/* Slots of the per-CPU `counters` map: what could not be accounted, so it is reported. */
enum kml_counter {
	KML_TABLE_FULL = 0,    /* allocation not tracked: allocs full */
	KML_NO_STACK = 1,      /* allocation tracked without its stack */
	KML_COMBINED_FULL = 2, /* stack not aggregated: combined full */
	KML_PENDING_FULL = 3,  /* user mode: call entry not remembered: pending full */
	KML_NR_COUNTERS = 4,
};

#endif /* __KMEMLEAK_LITE_H */
