#include "hf_base.h"
int main(void) { return 0; }
