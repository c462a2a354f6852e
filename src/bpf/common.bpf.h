/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every coretrace BPF program shares: the ring buffer the events travel in, the per-CPU
 * counter of events that did not fit (so user space can say how many were lost), the
 * wake-up policy that lets the consumer read in batches, and the cgroup filter.
 * Include it once, after vmlinux.h and the libbpf headers.
 */
#ifndef __COMMON_BPF_H
#define __COMMON_BPF_H

/* Resized from user space (--ringbuf-size) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* Events that could not be reserved or written: the ring buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* The one cgroup to trace with -c CGROUP-PATH (slot 0, filled from user space). */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

const volatile bool filter_cgroup = false;

/*
 * Wake the consumer only once this many bytes wait in the ring (0: on every event). The consumer
 * polls with a short timeout, so a quiet stream is still read promptly, while a storm is read in
 * large batches instead of one wake-up, one read and one write per event.
 */
const volatile __u64 wakeup_bytes = 0;

static __always_inline void count_drop(void)
{
	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&drops, &zero);

	if (count)
		*count += 1;
}

static __always_inline __u64 submit_flags(void)
{
	if (!wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									   : BPF_RB_NO_WAKEUP;
}

/* Reserve a fixed-size event; counts the drop itself when the ring is full. */
static __always_inline void *reserve_event(__u64 size)
{
	void *e = bpf_ringbuf_reserve(&events, size, 0);

	if (!e)
		count_drop();
	return e;
}

static __always_inline void submit_event(void *e)
{
	bpf_ringbuf_submit(e, submit_flags());
}

/* Copy a variable-size event (already built elsewhere) into the ring. */
static __always_inline void output_event(void *data, __u64 size)
{
	if (bpf_ringbuf_output(&events, data, size, submit_flags()))
		count_drop();
}

static __always_inline bool cgroup_filtered_out(void)
{
	return filter_cgroup && !bpf_current_task_under_cgroup(&cgroup_filter, 0);
}

#endif /* __COMMON_BPF_H */
