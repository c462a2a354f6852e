// SPDX-License-Identifier: GPL-2.0
/* exitsnoop: every process (or, with -T, thread) exit, with its age and how it ended. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "exitsnoop.h"
#include "common.bpf.h"

const volatile __u32 targ_pid = 0;
const volatile bool trace_threads = false;
const volatile bool failed_only = false;
const volatile __u64 min_age_ns = 0;

/* Dummy instance so the skeleton generates the Rust type of the record. */
struct exit_event _exit_event = {};

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	struct task_struct *task;
	struct exit_event *e;
	__u64 now, start;
	int exit_code;

	if (targ_pid && targ_pid != pid)
		return 0;
	if (!trace_threads && pid != tid)
		return 0;
	if (cgroup_filtered_out())
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	exit_code = BPF_CORE_READ(task, exit_code);
	if (failed_only && exit_code == 0)
		return 0;
	now = bpf_ktime_get_ns();
	start = BPF_CORE_READ(task, start_time);
	if (min_age_ns && now - start < min_age_ns)
		return 0;

	e = reserve_event(sizeof(*e));
	if (!e)
		return 0;
	e->ts = now;
	e->start_time = start;
	e->pid = pid;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = exit_code;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	submit_event(e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
