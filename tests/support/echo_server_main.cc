// Placeholder until the transport work lands; replaced by the real echo server.
int main() { return 1; }
