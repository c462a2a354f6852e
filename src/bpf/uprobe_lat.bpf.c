// SPDX-License-Identifier: GPL-2.0
/*
 * uprobe-lat: latency of user-space functions. The uprobe at entry pushes a timestamp on a small
 * per-thread stack; the uretprobe pops it and records the latency, so recursion and one traced
 * function calling another do not corrupt each other. One pair of programs serves every
 * function: the attach cookie says which one fired. Each pair exists twice, once for per-probe
 * (perf-event) links and once for multi-uprobe links (6.6+: one link, and one detach, for every
 * function of a binary); user space loads the pair the kernel can attach.
 *
 * Kernels before 5.15 have no attach cookies (the verifier refuses the helper even in a program
 * never attached), so for them there are NO_COOKIE_PROGS more pairs, identical but for the
 * function id, a constant in each: pair i times function i. User space loads only as many as
 * there are functions, and none of the cookie programs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "uprobe_lat.h"
#include "common.bpf.h"
#include "user_stack.bpf.h"

const volatile __u32 targ_tgid = 0;
const volatile bool kernel_hist = false;
const volatile bool per_pid = false;
const volatile __u64 unit_div = 1;	 /* ns per unit of the kernel histogram's slots */
const volatile __u64 slower_than_ns = 0; /* 0: no slow-call rows */
const volatile __u32 stack_bytes = 0;	 /* --stack: bytes of user stack copied, else 0 */

struct frame {
	__u64 ts;
	__u32 func_id;
	__u32 pad;
};

struct thread_stack {
	__u32 depth; /* may exceed MAX_DEPTH: those frames are counted, not timed */
	__u32 pad;
	struct frame frames[MAX_DEPTH];
};

/*
 * A plain hash, not an LRU: an LRU would evict a live thread's frames without a word. A thread
 * that finds it full is counted (LOSS_THREADS_FULL); a thread's entry goes when it exits.
 * Sized from user space (--max-threads).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct thread_stack);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1); /* sized from user space with --kernel-hist */
	__type(key, struct hist_key);
	__type(value, struct hist_value);
} hists SEC(".maps");

/* Without --per-pid: entry func_id * 2 + epoch. A plain array: no key to hash. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1); /* sized from user space with --kernel-hist */
	__type(key, __u32);
	__type(value, struct hist_value);
} func_hists SEC(".maps");

/* Slot 0: the epoch new samples go to (see struct hist_key). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} epoch SEC(".maps");

/* Zeroed templates for new map entries: too large for the BPF stack. */
struct thread_stack empty_stack = {};
struct hist_value empty_hist = {};

/* Dummy instances so the skeleton generates the Rust types. */
struct call_event _call_event = {};
struct hist_key _hist_key = {};

/* count_loss() for several calls at once; atomic for the same reason (see common.bpf.h). */
static __always_inline void count_losses(__u32 cause, __u64 n)
{
	__u64 *count = bpf_map_lookup_elem(&losses, &cause);

	if (count)
		__sync_fetch_and_add(count, n);
}

static __always_inline bool filtered_out(__u32 pid)
{
	if (targ_tgid && pid != targ_tgid)
		return true;
	return cgroup_filtered_out();
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xffffffff) << 5; v >>= shift; r |= shift;
	shift = (v > 0xffff) << 4; v >>= shift; r |= shift;
	shift = (v > 0xff) << 3; v >>= shift; r |= shift;
	shift = (v > 0xf) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/*
 * on_entry() and on_return() are subprograms, not inlined: the 64 cookie-less pairs below would
 * otherwise each carry a copy (the object was 1 MB, most of the shipped binary's BPF bytes).
 */
static __noinline int on_entry(__u32 func_id)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	struct thread_stack *st;
	__u32 d;

	if (filtered_out(pid))
		return 0;
	st = bpf_map_lookup_elem(&stacks, &tid);
	if (!st) {
		bpf_map_update_elem(&stacks, &tid, &empty_stack, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stacks, &tid);
		if (!st) {
			count_loss(LOSS_THREADS_FULL);
			return 0;
		}
	}
	d = st->depth;
	st->depth = d + 1;
	if (d >= MAX_DEPTH) {
		count_loss(LOSS_TOO_DEEP);
		return 0;
	}
	/* The mask keeps older verifiers (6.1, 6.12) sure of the bound clang may not keep. */
	d &= MAX_DEPTH - 1;
	st->frames[d].func_id = func_id;
	/* Last, so the probe's own work here is not counted. */
	st->frames[d].ts = bpf_ktime_get_ns();
	return 0;
}

static __always_inline void record_hist(__u32 func_id, __u32 pid, __u64 lat)
{
	struct hist_key key = { .func_id = func_id, .pid = pid };
	struct hist_value *h;
	__u32 zero = 0, *ep, idx;
	__u64 slot; /* 64-bit: a 32-bit index is zero-extended in a copy whose bound 6.1 loses */

	ep = bpf_map_lookup_elem(&epoch, &zero);
	key.epoch = ep ? *ep & 1 : 0;
	if (!per_pid) {
		idx = func_id * 2 + key.epoch;
		h = bpf_map_lookup_elem(&func_hists, &idx);
		if (!h) {
			count_loss(LOSS_HIST_FULL);
			return;
		}
	} else {
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h) {
			bpf_map_update_elem(&hists, &key, &empty_hist, BPF_NOEXIST);
			h = bpf_map_lookup_elem(&hists, &key);
			if (!h) {
				count_loss(LOSS_HIST_FULL);
				return;
			}
		}
	}
	/* Per-CPU values: plain increments, no atomics. */
	slot = log2_u64(lat / unit_div);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	h->slots[slot] += 1;
	h->count += 1;
	h->sum_ns += lat;
	if (lat > h->max_ns)
		h->max_ns = lat;
}

/*
 * --stack: sends a copy of the user stack at a slow call's return (the callers' frames are
 * intact there; the function itself is the row's). Returns whether it was sent; a copy that
 * could not be is counted, and the row says so.
 */
static __always_inline bool send_stack(struct pt_regs *ctx, __u32 tid, __u64 now)
{
	struct stack_sample *s = begin_sample(bpf_get_smp_processor_id());

	if (!s) {
		count_loss(LOSS_STACK_LOST);
		return false;
	}
	/* The call's time: the consumer's time order (perf buffer) keeps the copy first. */
	s->ts = now;
	s->seq = SLOW_STACK_SEQ | tid;
	if (send_sample(ctx, s, stack_bytes)) {
		count_loss(LOSS_STACK_LOST);
		return false;
	}
	return true;
}

static __noinline int on_return(void *ctx, __u32 func_id)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	__u32 d, i, j;
	struct thread_stack *st;
	struct call_event *e;
	bool slow, stack = false;
	__u64 lat;

	if (filtered_out(pid))
		return 0;
	st = bpf_map_lookup_elem(&stacks, &tid);
	if (!st || st->depth == 0)
		return 0; /* entered before we attached */
	d = st->depth - 1;
	if (d >= MAX_DEPTH) {
		st->depth = d; /* counted at entry, never timed */
		return 0;
	}
	d &= MAX_DEPTH - 1; /* a bound older verifiers can see */
	if (st->frames[d].func_id != func_id) {
		/*
		 * The returns of the frames above ours never came (longjmp, an exception): the
		 * kernel dropped their return probes. Find our own frame below them; without one,
		 * this call began before we attached.
		 */
		j = d;
		for (i = 0; i < MAX_DEPTH; i++) {
			if (j == 0)
				return 0;
			j = (j - 1) & (MAX_DEPTH - 1);
			if (st->frames[j].func_id == func_id)
				break;
		}
		if (st->frames[j].func_id != func_id)
			return 0;
		count_losses(LOSS_UNWOUND, d - j); /* the frames above ours */
		d = j;
	}
	st->depth = d;
	lat = now - st->frames[d].ts;

	slow = slower_than_ns && lat >= slower_than_ns;
	if (kernel_hist) {
		record_hist(func_id, pid, lat);
		if (!slow)
			return 0;
	}
	if (slow && stack_bytes)
		stack = send_stack(ctx, tid, now);
	e = reserve_event(sizeof(*e));
	if (!e)
		return 0;
	e->ts = now;
	e->lat_ns = lat;
	e->pid = pid;
	e->tid = tid;
	e->func_id = func_id;
	e->flags = (slow ? CALL_SLOW : 0) | (stack ? CALL_STACK : 0);
	/* --per-pid names each process: from here, since a short-lived one is gone by the time
	 * user space reads its calls. */
	if (slow || per_pid)
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
	else
		e->comm[0] = 0;
	if (per_pid) {
		struct task_struct *task = (void *)bpf_get_current_task();

		e->start_ns = BPF_CORE_READ(task, group_leader, start_time);
	} else {
		e->start_ns = 0;
	}
	/* Attribution for the records user space shows one by one (slow calls, --per-pid rows),
	 * not the cost of every call that only feeds a histogram. */
	e->cgroup_id = (slow || per_pid) ? current_cgroup_id() : 0;
	submit_event(ctx, e);
	return 0;
}

/* Per-probe links (perf events) on kernels with attach cookies (5.15+). */
SEC("uprobe")
int BPF_UPROBE(func_entry)
{
	return on_entry((__u32)bpf_get_attach_cookie(ctx));
}

SEC("uretprobe")
int BPF_URETPROBE(func_exit)
{
	return on_return(ctx, (__u32)bpf_get_attach_cookie(ctx));
}

/* Multi-uprobe links (6.6+). */
SEC("uprobe.multi")
int BPF_UPROBE(func_entry_multi)
{
	return on_entry((__u32)bpf_get_attach_cookie(ctx));
}

SEC("uretprobe.multi")
int BPF_URETPROBE(func_exit_multi)
{
	return on_return(ctx, (__u32)bpf_get_attach_cookie(ctx));
}

/*
 * Without attach cookies (before 5.15): func_entry_N and func_exit_N time function N, one
 * per-probe link each. The return program needs the id too: it is how a return finds its own
 * frame below those a longjmp skipped.
 */
#define NO_COOKIE_PAIR(n)                                                                      \
	SEC("uprobe")                                                                          \
	int func_entry_##n(struct pt_regs *ctx)                                                \
	{                                                                                      \
		return on_entry(n);                                                            \
	}                                                                                      \
	SEC("uretprobe")                                                                       \
	int func_exit_##n(struct pt_regs *ctx)                                                 \
	{                                                                                      \
		return on_return(ctx, n);                                                      \
	}
#define NO_COOKIE_PAIRS8(a, b, c, d, e, f, g, h)                                               \
	NO_COOKIE_PAIR(a) NO_COOKIE_PAIR(b) NO_COOKIE_PAIR(c) NO_COOKIE_PAIR(d)                \
	NO_COOKIE_PAIR(e) NO_COOKIE_PAIR(f) NO_COOKIE_PAIR(g) NO_COOKIE_PAIR(h)

/* NO_COOKIE_PROGS (uprobe_lat.h) of them: 0 to 63. */
NO_COOKIE_PAIRS8(0, 1, 2, 3, 4, 5, 6, 7)
NO_COOKIE_PAIRS8(8, 9, 10, 11, 12, 13, 14, 15)
NO_COOKIE_PAIRS8(16, 17, 18, 19, 20, 21, 22, 23)
NO_COOKIE_PAIRS8(24, 25, 26, 27, 28, 29, 30, 31)
NO_COOKIE_PAIRS8(32, 33, 34, 35, 36, 37, 38, 39)
NO_COOKIE_PAIRS8(40, 41, 42, 43, 44, 45, 46, 47)
NO_COOKIE_PAIRS8(48, 49, 50, 51, 52, 53, 54, 55)
NO_COOKIE_PAIRS8(56, 57, 58, 59, 60, 61, 62, 63)

/*
 * A thread's frames go with it, so `stacks` cannot fill with threads that are gone. Calls it
 * was still inside (exit() called from a traced function, a longjmp past one) never return:
 * they are counted, not forgotten.
 */
SEC("raw_tp/sched_process_exit") /* raw: attached by name, no tracefs needed */
int thread_exit(void *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct thread_stack *st = bpf_map_lookup_elem(&stacks, &tid);
	__u32 depth;

	if (!st)
		return 0;
	depth = st->depth;
	/* Frames past MAX_DEPTH were counted when they were entered. */
	if (depth > MAX_DEPTH)
		depth = MAX_DEPTH;
	if (depth)
		count_losses(LOSS_UNWOUND, depth);
	bpf_map_delete_elem(&stacks, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
