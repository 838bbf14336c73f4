#include "fulcrum/write_gate.h"

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TTransport.h>

namespace fulcrum {

using apache::thrift::TApplicationException;
using apache::thrift::protocol::TProtocol;

void RefuseNotMaster(RoleState& role, TProtocol* in, TProtocol* out, const std::string& fname,
                     int32_t seqid, bool oneway) {
  role.OnWriteRefused();
  // What the stock processor does with a call it cannot run: consume the arguments so the
  // connection stays usable for the next call, then answer with an exception.
  in->skip(apache::thrift::protocol::T_STRUCT);
  in->readMessageEnd();
  in->getTransport()->readEnd();
  if (oneway) return;  // no reply is expected; the call is dropped
  const RoleInfo info = role.info();
  const TApplicationException refusal(
      static_cast<TApplicationException::TApplicationExceptionType>(kNotMasterExceptionType),
      FormatNotMaster({info.master_address, info.epoch}));
  out->writeMessageBegin(fname, apache::thrift::protocol::T_EXCEPTION, seqid);
  refusal.write(out);
  out->writeMessageEnd();
  out->getTransport()->writeEnd();
  out->getTransport()->flush();
}

}  // namespace fulcrum
