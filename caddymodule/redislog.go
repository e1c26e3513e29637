package caddymodule

import (
	"context"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func init() {
	// go-redis prints to stderr by default, a line per failed dial while
	// Redis is down. Its messages go to Caddy's log instead, at DEBUG: the
	// store errors that matter are reported by this module already.
	redis.SetLogger(redisLogger{})
}

// redisLogger hands go-redis's messages to Caddy's current logger.
type redisLogger struct{}

// Printf logs one go-redis message, formatting it only when DEBUG is on.
func (redisLogger) Printf(_ context.Context, format string, args ...any) {
	if ce := caddy.Log().Named("access_auth.redis").Check(zapcore.DebugLevel, "go-redis"); ce != nil {
		ce.Write(zap.String("message", fmt.Sprintf(format, args...)))
	}
}
