// The program of issue 24, built the ordinary way (g++ -O2 -g: no frame pointers): each request
// leaks a std::string through main -> serve -> handle_request -> store -> new std::string. The
// string's buffer is allocated inside libstdc++ (_M_construct), which Debian builds without
// frame pointers too. REQUESTS requests; the functions are kept out of line (noinline) and end
// with work after their call, so that each keeps a frame of its own (no inlining, no tail call).
// Build: c++ -O2 -g -o deep_cxx deep_cxx.cc
// Run: deep_cxx [requests [marker]]: with a marker, it says "deep: leaked" on stdout once it has
// leaked, then stays until the file MARKER exists (at most 60 s), so that a test can let the
// tool read its maps while it is there.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include <unistd.h>

static std::vector<std::string *> kept;
static volatile unsigned long work;

__attribute__((noinline)) void store(int i)
{
	// Longer than the small-string buffer: the characters are heap-allocated (in _M_construct).
	kept.push_back(new std::string(40 + i % 8, 'x'));
	work = work + 1;
}

__attribute__((noinline)) void handle_request(int i)
{
	store(i);
	work = work + 2;
}

__attribute__((noinline)) void serve(int requests)
{
	for (int i = 0; i < requests; i++)
		handle_request(i);
	work = work + 3;
}

int main(int argc, char **argv)
{
	serve(argc > 1 ? std::atoi(argv[1]) : 100);
	work = work + 4;
	if (argc > 2) {
		std::printf("deep: leaked\n");
		std::fflush(stdout);
		for (int i = 0; i < 6000 && access(argv[2], F_OK) != 0; i++)
			usleep(10000);
	}
	return 0;
}
