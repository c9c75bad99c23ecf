// throw-legacy: C++ exceptions as Debian 12's clang 14 builds them with -fwasm-exceptions: the
// *legacy* exception-handling instructions (try/catch/rethrow), the only ones LLVM before 19
// emits. Neither wasmtime (48 or 49) nor skiff runs them; skiff must say which proposal and how
// to rebuild, never "invalid". clang 14 has no exnref output and Debian ships no wasm C++
// exception runtime, so the standard (try_table) form is covered by wat/exceptions.proposal.wat.
// Built with -nostdlib++ and --allow-undefined: the __cxa_* runtime stays an import, never
// reached, since validation refuses the module first.
#include <stdio.h>

static int deep(int n) {
  if (n == 0) throw 42;
  return deep(n - 1) + 1;
}

int main() {
  try {
    deep(3);
  } catch (int e) {
    printf("caught %d\n", e);
    return e - 40;
  }
  return 0;
}
