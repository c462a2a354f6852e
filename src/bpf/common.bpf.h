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

/*
 * Attribution: which cgroup an event's task sits in (src/host/container/ turns the id into a path,
 * a container id and a pod uid, once per cgroup).
 *
 * The id is the cgroup v2 id (the kernfs node id, the directory's inode number), except where
 * the task sits in the v2 root and in a deeper cgroup of the v1 memory hierarchy: then it is that
 * v1 cgroup's kernfs id, tagged with CGROUP_V1_TAG (the two hierarchies number their directories
 * independently). That is the hybrid layout, where v2 says nothing about a task and a Docker
 * container with the cgroupfs driver lives only in v1 hierarchies (memory/docker/<id>). Memory
 * is the v1 hierarchy chosen because every container runtime and systemd put a task in a memory
 * cgroup of its own (limits are set there), it is on in every distribution kernel, and it is
 * one hierarchy, so one mount to map ids back to paths.
 */
#define CGROUP_V1_TAG (1ULL << 63)
/* Levels walked up from a task's cgroup by the --container filter. */
#define CONTAINER_MAX_DEPTH 16

static __always_inline struct cgroup *task_cgroup(struct task_struct *task, __u64 *tag)
{
	struct cgroup *cgrp = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	struct cgroup_subsys_state *css;
	struct css_set *cset;
	struct cgroup *v1;
	int memory;

	*tag = 0;
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return cgrp;
	if (BPF_CORE_READ(cgrp, level) != 0)
		return cgrp;
	memory = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	if (memory < 0 || memory >= CGROUP_SUBSYS_COUNT)
		return cgrp;
	cset = BPF_CORE_READ(task, cgroups);
	if (bpf_core_read(&css, sizeof(css), &cset->subsys[memory]) || !css)
		return cgrp;
	v1 = BPF_CORE_READ(css, cgroup);
	if (!v1 || BPF_CORE_READ(v1, level) == 0)
		return cgrp; /* in the root there too (or memory is on v2, and the root's) */
	*tag = CGROUP_V1_TAG;
	return v1;
}

/*
 * Attribution that outlives the cgroup: the first time an id is seen, the names of its cgroup
 * and of its parents (leaf first, up to CGROUP_NAME_LEVELS, the hierarchy's root left out) go
 * into `cgroup_names`, which user space empties (src/host/container/names.rs), so a container whose
 * cgroup is removed before user space reads its events is still named. `cgroup_sent` keeps
 * this to once per cgroup (an id it forgets is sent again: harmless). A full `cgroup_names`
 * counts LOSS_CGROUP_NAMES_FULL, and the id is tried again at its next event. Both maps are
 * shrunk to one entry before load when user space does not ask for names (send_cgroup_names).
 */
#define CGROUP_NAME_LEVELS 8
#define CGROUP_NAME_LEN 96
#define CGROUP_NAME_TRUNCATED 1 /* more levels above the ones read */
#define CGROUP_NAME_CUT 2       /* a name longer than CGROUP_NAME_LEN - 1 bytes */
/* The last slot of `losses`, shared by every tool. */
#define LOSS_CGROUP_NAMES_FULL (LOSS_SLOTS - 1)

struct cgroup_name {
	__u32 levels; /* name 0 is the cgroup's own, name levels - 1 its top ancestor's */
	__u32 flags;
	/* name i at names[i * CGROUP_NAME_LEN], NUL-terminated (one dimension: the skeleton's
	 * Rust type then derives what it needs) */
	char names[CGROUP_NAME_LEVELS * CGROUP_NAME_LEN];
};

const volatile bool send_cgroup_names = false;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct cgroup_name);
} cgroup_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cgroup_name);
} cgroup_name_scratch SEC(".maps");

#ifndef EEXIST
#define EEXIST 17
#endif

/* A subprogram: called from every program that reads a cgroup id, inlined in none. */
static __noinline void send_cgroup_name(struct cgroup *cgrp, __u64 id)
{
	struct cgroup_name *n;
	const char *name;
	__u32 zero = 0;
	__u8 one = 1;
	long err;
	int i, len;

	if (!cgrp || bpf_map_lookup_elem(&cgroup_sent, &id))
		return;
	n = bpf_map_lookup_elem(&cgroup_name_scratch, &zero);
	if (!n)
		return;
	n->levels = 0;
	n->flags = 0;
	for (i = 0; i < CGROUP_NAME_LEVELS; i++) {
		if (!cgrp || BPF_CORE_READ(cgrp, level) == 0)
			break;
		name = BPF_CORE_READ(cgrp, kn, name);
		len = bpf_probe_read_kernel_str(&n->names[i * CGROUP_NAME_LEN], CGROUP_NAME_LEN,
						name);
		if (len < 0)
			n->names[i * CGROUP_NAME_LEN] = 0;
		else if (len == CGROUP_NAME_LEN)
			n->flags |= CGROUP_NAME_CUT;
		n->levels = i + 1;
		cgrp = BPF_CORE_READ(cgrp, self.parent, cgroup);
	}
	if (cgrp && BPF_CORE_READ(cgrp, level) > 0)
		n->flags |= CGROUP_NAME_TRUNCATED;
	err = bpf_map_update_elem(&cgroup_names, &id, n, BPF_NOEXIST);
	if (err && err != -EEXIST) {
		count_loss(LOSS_CGROUP_NAMES_FULL);
		return;
	}
	bpf_map_update_elem(&cgroup_sent, &id, &one, BPF_ANY);
}

static __always_inline __u64 task_cgroup_id(struct task_struct *task)
{
	__u64 tag, id;
	struct cgroup *cgrp = task_cgroup(task, &tag);

	id = BPF_CORE_READ(cgrp, kn, id) | tag;
	if (send_cgroup_names)
		send_cgroup_name(cgrp, id);
	return id;
}

/*
 * The calling task's cgroup id (in exitsnoop, the exiting task is the caller). A subprogram, not
 * inlined: its CO-RE reads would otherwise be copied into every program that calls it (uprobe-lat
 * has 130), which is most of the installed binary's BPF bytes.
 */
static __noinline __u64 current_cgroup_id(void)
{
	return task_cgroup_id((struct task_struct *)bpf_get_current_task());
}

/*
 * --container: the cgroup ids (tagged as above) of the chosen container, filled from user space;
 * a task is traced if its cgroup or one of its ancestors is one of them.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} container_filter SEC(".maps");

const volatile bool filter_container = false;

/* A subprogram for the same reason as current_cgroup_id(). */
static __noinline bool container_wanted(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct cgroup *cgrp;
	__u64 tag, id;
	int i;

	cgrp = task_cgroup(task, &tag);
	for (i = 0; i < CONTAINER_MAX_DEPTH && cgrp; i++) {
		id = BPF_CORE_READ(cgrp, kn, id) | tag;
		if (bpf_map_lookup_elem(&container_filter, &id))
			return true;
		cgrp = BPF_CORE_READ(cgrp, self.parent, cgroup);
	}
	return false;
}

/* -c CGROUP-PATH and --container ID-PREFIX. */
static __always_inline bool cgroup_filtered_out(void)
{
	if (filter_cgroup && !bpf_current_task_under_cgroup(&cgroup_filter, 0))
		return true;
	return filter_container && !container_wanted();
}

#endif /* __COMMON_BPF_H */
