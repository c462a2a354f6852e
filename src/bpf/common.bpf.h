/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every coretrace BPF program shares: the buffer the events travel in, the per-CPU
 * loss counters (so user space can say how many events were lost, and why), the
 * wake-up policy that lets the consumer read in batches, and the cgroup filter.
 * Include it once, after vmlinux.h and the libbpf headers.
 */
#ifndef __COMMON_BPF_H
#define __COMMON_BPF_H

/*
 * The transport, chosen by user space before load (src/ringbuf/transport.rs): a BPF ring
 * buffer (5.8+), or a perf event array where the kernel has no ring buffer (or the user forced
 * it). The verifier follows only the branch this constant selects, so a kernel without the
 * ring-buffer helpers still loads the program. A tool only calls reserve_event/submit_event or
 * output_event, and never knows which transport it got.
 *
 * Every event begins with its __u64 ts (bpf_ktime_get_ns()): a perf buffer is one buffer per
 * CPU, and the consumer puts the records of a poll round back in time order by it.
 */
const volatile bool perf_buffer = false;

/*
 * Resized from user space (--ringbuf-size) before load; with the perf buffer, user space turns
 * it into a BPF_MAP_TYPE_PERF_EVENT_ARRAY (one slot per CPU), so no ring buffer is created.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/*
 * With the perf buffer, reserve_event hands out this per-CPU buffer, and submit_event copies
 * it into the perf buffer (a perf buffer has no reserve). Not created with the ring buffer.
 * (A program preempted between the two, which uprobe programs can be on kernels that have ring
 * buffers anyway, could find another program's event in it: libbpf-tools' compat.bpf.h shares
 * this; kernels that need the perf buffer, before 5.8, run programs with preemption off.)
 */
#define SCRATCH_BYTES 256

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, SCRATCH_BYTES);
} scratch SEC(".maps");

/*
 * Every way an event can be lost has its own slot here, counted per CPU and reported by cause at
 * exit (src/ringbuf/losses.rs). Slot 0 is the transport (the ring or perf buffer was full); a tool numbers its own causes from 1
 * in its header, and describes each slot once on the Rust side (a LossCause).
 */
#define LOSS_RINGBUF_FULL 0
#define LOSS_SLOTS 8

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOSS_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} losses SEC(".maps");

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

/*
 * Atomic although the counter is per CPU: a tracing program can be preempted (migration is
 * disabled, preemption is not), and another program counting on the same CPU in between would
 * make a plain `+= 1` lose one of the two counts.
 */
static __always_inline void count_loss(__u32 cause)
{
	__u64 *count = bpf_map_lookup_elem(&losses, &cause);

	if (count)
		__sync_fetch_and_add(count, 1);
}

static __always_inline __u64 submit_flags(void)
{
	if (!wakeup_bytes)
		return 0;
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
									   : BPF_RB_NO_WAKEUP;
}

static __always_inline void *__reserve_event(__u64 size)
{
	__u32 zero = 0;
	void *e;

	if (perf_buffer)
		e = bpf_map_lookup_elem(&scratch, &zero);
	else
		e = bpf_ringbuf_reserve(&events, size, 0);
	if (!e)
		count_loss(LOSS_RINGBUF_FULL);
	return e;
}

/*
 * Reserve a fixed-size event; counts the drop itself when the ring is full. Fill it, then
 * hand it to submit_event(ctx, e) (ctx: the program's context, which the perf buffer needs).
 */
#define reserve_event(size)                                                                   \
	({                                                                                    \
		_Static_assert((size) <= SCRATCH_BYTES,                                       \
			       "event larger than the perf-buffer scratch: raise SCRATCH_BYTES"); \
		__reserve_event(size);                                                        \
	})

static __always_inline void __submit_event(void *ctx, void *e, __u64 size)
{
	if (perf_buffer) {
		if (bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, size))
			count_loss(LOSS_RINGBUF_FULL);
	} else {
		bpf_ringbuf_submit(e, submit_flags());
	}
}

#define submit_event(ctx, e) __submit_event(ctx, e, sizeof(*(e)))

/* Copy a variable-size event (already built elsewhere) into the ring or perf buffer. */
static __always_inline void output_event(void *ctx, void *data, __u64 size)
{
	long err;

	if (perf_buffer)
		err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, data, size);
	else
		err = bpf_ringbuf_output(&events, data, size, submit_flags());
	if (err)
		count_loss(LOSS_RINGBUF_FULL);
}

static __always_inline bool cgroup_filtered_out(void)
{
	return filter_cgroup && !bpf_current_task_under_cgroup(&cgroup_filter, 0);
}

#endif /* __COMMON_BPF_H */
