#!/usr/bin/python3
"""A stock Apache Thrift Python server of the Echo test service (tests/idl/echo.thrift).

Only Debian's python3-thrift library and the stock generated code (thrift --gen py): what a
team running Python services would deploy. Fulcrum's clients must work against it unchanged.

  echo_server.py --gen-py=DIR [--id=NAME] [--protocol=binary|compact]

Listens on 127.0.0.1 on a port the OS picks, prints "LISTENING <port>", and serves framed
requests with TThreadedServer (one thread per connection, its requests answered in order)
until killed.
"""
import argparse
import sys
import threading
import time


def main():
    parser = argparse.ArgumentParser(
        usage="echo_server.py --gen-py=DIR [--id=NAME] [--protocol=binary|compact]")
    parser.add_argument("--gen-py", required=True, help="the stock generated Python code")
    parser.add_argument("--id", default="py", help="what whoami() and slow() answer")
    parser.add_argument("--protocol", default="binary", choices=["binary", "compact"])
    args = parser.parse_args()
    sys.path.insert(0, args.gen_py)

    from thrift.protocol import TBinaryProtocol, TCompactProtocol
    from thrift.server import TServer
    from thrift.transport import TSocket, TTransport
    from echo import Echo
    from echo.ttypes import EchoError

    class Handler:
        def __init__(self):
            self.lock = threading.Lock()
            self.counter = 0

        def echo(self, message):
            return message

        def slow(self, millis):
            time.sleep(max(0, min(millis, 60000)) / 1000.0)
            return args.id

        def fail(self, message):
            raise EchoError(message=message)

        def whoami(self):
            return args.id

        def increment(self, delta):
            with self.lock:
                self.counter += delta
                return self.counter

        def blob(self, size):
            return b"x" * size

        def upload(self, data):
            return len(data)

        def notify(self, message):
            pass

    socket = TSocket.TServerSocket(host="127.0.0.1", port=0)
    socket.listen()
    port = socket.handle.getsockname()[1]
    socket.listen = lambda: None  # serve() would listen again, on another port
    protocol = (TCompactProtocol.TCompactProtocolFactory() if args.protocol == "compact" else
                TBinaryProtocol.TBinaryProtocolFactory())
    server = TServer.TThreadedServer(Echo.Processor(Handler()), socket,
                                     TTransport.TFramedTransportFactory(), protocol, daemon=True)
    print("LISTENING %d" % port, flush=True)
    server.serve()


if __name__ == "__main__":
    main()
