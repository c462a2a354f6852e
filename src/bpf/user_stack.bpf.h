/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A copy of the user stack for unwinding in user space (src/host/unwind.rs): the registers an
 * unwinder starts from and the top of the user stack (from sp up, at most MAX_STACK_BYTES),
 * sent as one stack_sample record. Shared by kmemleak-lite (--unwind dwarf) and uprobe-lat
 * (--stack). Include after common.bpf.h (the events map). The including program sizes
 * `samples` to one entry per CPU before load (1 when it copies no stacks).
 */
#ifndef __USER_STACK_BPF_H
#define __USER_STACK_BPF_H

#define MAX_STACK_BYTES 32768
#define STACK_PAGE 4096

#define SAMPLE_STACK_END 1 /* the copy stopped where the stack's mapping ends: nothing was cut */
#define SAMPLE_BUSY 2      /* the CPU's scratch entry is being filled (ignored in records) */

struct stack_sample {
	__u64 ts;	/* every record starts with its time (common.bpf.h) */
	__u64 seq;	/* the tool's tag for this copy */
	__u64 regs[4];	/* ip, sp, frame pointer; arm64's link register (0 on x86-64) */
	__u32 len;	/* bytes of data, the stack from sp up */
	__u32 flags;	/* SAMPLE_* */
	__u8 data[MAX_STACK_BYTES + STACK_PAGE]; /* a page of slack for the verifier's bounds */
};

/* Dummy instance so the skeleton generates the Rust type. */
struct stack_sample _stack_sample = {};

/* One per CPU, indexed by CPU: too large for a per-CPU map's value. A program preempted while
 * filling it (uprobe programs can be) could see another's copy here; `busy` makes that one
 * count its copy lost instead. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_sample);
} samples SEC(".maps");

/* Copies from sp up a page at a time, so the copy stops at the end of the stack's mapping (a
 * read that faults) instead of failing whole; sets SAMPLE_STACK_END then. */
static __always_inline __u32 copy_stack(struct stack_sample *s, __u64 sp, __u64 stack_bytes)
{
	__u64 off = 0, len, rest;

	for (int i = 0; i < MAX_STACK_BYTES / STACK_PAGE + 1; i++) {
		if (off >= stack_bytes || off > MAX_STACK_BYTES)
			break;
		rest = stack_bytes - off;
		len = STACK_PAGE - ((sp + off) & (STACK_PAGE - 1));
		if (len > rest)
			len = rest;
		/* Checked on the register passed (64-bit: no 32-bit copy checked instead). */
		barrier_var(len);
		if (len == 0 || len > STACK_PAGE)
			break;
		if (bpf_probe_read_user(&s->data[off], len, (void *)(sp + off))) {
			s->flags |= SAMPLE_STACK_END;
			break;
		}
		off += len;
	}
	return off;
}

/* This CPU's scratch entry, marked busy; NULL when there is none free (count the copy lost).
 * The caller sets `seq` and calls send_sample. */
static __always_inline struct stack_sample *begin_sample(__u32 cpu)
{
	struct stack_sample *s = bpf_map_lookup_elem(&samples, &cpu);

	if (!s || (s->flags & SAMPLE_BUSY))
		return NULL;
	s->flags = SAMPLE_BUSY;
	s->ts = bpf_ktime_get_ns();
	return s;
}

/* Fills the registers and the copy of the stack, sends the record and frees the entry.
 * Returns 0, or the output's error (the ring buffer had no room: count the copy lost). */
static __always_inline long send_sample(struct pt_regs *ctx, struct stack_sample *s,
					 __u64 stack_bytes)
{
	__u64 size;
	long err;

	s->regs[0] = PT_REGS_IP(ctx);
	s->regs[1] = PT_REGS_SP(ctx);
	s->regs[2] = PT_REGS_FP(ctx);
#if defined(__TARGET_ARCH_arm64)
	s->regs[3] = PT_REGS_RET(ctx); /* the link register */
#else
	s->regs[3] = 0;
#endif
	s->len = copy_stack(s, s->regs[1], stack_bytes);
	size = __builtin_offsetof(struct stack_sample, data) + s->len;
	if (size > sizeof(*s))
		size = sizeof(*s);
	if (perf_buffer)
		err = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, s, size);
	else
		err = bpf_ringbuf_output(&events, s, size, submit_flags());
	s->flags = 0;
	return err;
}

#endif /* __USER_STACK_BPF_H */
