#include "edge/server/http_reply.hpp"

#include <chrono>

#include "edge/server/sse.hpp"

namespace duet::edge::server {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

void reply_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status();
  res.set_content(json_text(e.body()), "application/json");
}

void stream_completion(httplib::Response& res, ServeContext& ctx, const PreparedRequest& p, bool chat,
                       const std::string& id, int64_t created, bool usage, const nlohmann::json& lead) {
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream", [&ctx, p, chat, id, created, usage, lead](size_t, httplib::DataSink& sink) {
        SseWriter w([&sink](const std::string& b) { return sink.write(b.data(), b.size()); });
        const std::string& model = ctx.model_id;
        auto chunk = [&](const std::string& text, const std::string& finish) {
          return chat ? chat_chunk(id, created, model, text, finish, false)
                      : completion_chunk(id, created, model, text, finish);
        };
        if (!lead.is_null()) w.send(lead);
        try {
          const auto out = run_completion(ctx, p, [&](const std::string& d) { return w.send(chunk(d, "")); });
          if (out.stop_reason == "cancelled") return false;  // the reader is gone
          // duet's own reason beside OpenAI's: the page tells the ending rule from the model's end
          auto last = chunk("", finish_reason(out.stop_reason));
          last["stop_reason"] = out.stop_reason;
          w.send(last);
          if (usage) w.send(usage_chunk(chat, id, created, model, out.usage));
        } catch (...) {
          // the status line is gone already: the error travels as an event
          w.send(to_api_error(std::current_exception()).body());
        }
        w.done();
        sink.done();
        return true;
      });
}

}  // namespace duet::edge::server
