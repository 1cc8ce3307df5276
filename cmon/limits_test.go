package main

import (
	"testing"

	"github.com/cmon-dev/cmon/rpc"
)

func TestSizeConnLimits(t *testing.T) {
	tests := []struct {
		name   string
		limits rpc.ConnLimits
		files  uint64
		want   rpc.ConnLimits
	}{
		{name: "room enough", limits: rpc.ConnLimits{Total: 2000, PerAddress: 200}, files: 1 << 20,
			want: rpc.ConnLimits{Total: 2000, PerAddress: 200}},
		{name: "lowered to the descriptors left", limits: rpc.ConnLimits{Total: 2000, PerAddress: 200}, files: 1024,
			want: rpc.ConnLimits{Total: 768, PerAddress: 200}},
		{name: "a quarter kept on large limits", limits: rpc.ConnLimits{Total: 5000}, files: 4096,
			want: rpc.ConnLimits{Total: 3072}},
		{name: "half kept on tiny limits", limits: rpc.ConnLimits{Total: 2000}, files: 256,
			want: rpc.ConnLimits{Total: 128}},
		{name: "no bound configured", limits: rpc.ConnLimits{PerAddress: 200}, files: 1024,
			want: rpc.ConnLimits{Total: 768, PerAddress: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sizeConnLimits(tt.limits, tt.files); got != tt.want {
				t.Errorf("sizeConnLimits(%+v, %d) = %+v, want %+v", tt.limits, tt.files, got, tt.want)
			}
		})
	}
}
