#include "cloud/admission.hpp"

namespace duet::cloud {

Session& admit_forward(SessionTable& sessions, const std::string& owner, const protocol::Forward& m,
                       protocol::WireDtype wire_dtype, const AdmissionContract& contract) {
  protocol::validate_forward(m, {contract.hidden_size, wire_dtype, contract.max_positions_per_forward});
  Session& s = sessions.get(owner, m.session_id);
  sessions.reserve(s, m.start_pos, m.n_positions);
  return s;
}

}  // namespace duet::cloud
