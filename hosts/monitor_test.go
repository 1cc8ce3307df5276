package hosts

import "testing"

func TestDiskUse(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want int
	}{
		{name: "df -P line", out: "/dev/sda1 41152736 30000000 9039124 77% /\n", want: 77},
		{name: "full", out: "overlay 100 100 0 100% /", want: 100},
		{name: "no output", out: "", want: -1},
		{name: "not df", out: "hello world", want: -1},
		{name: "garbage percentage", out: "a b c d xx% /", want: -1},
		{name: "out of range", out: "a b c d 140% /", want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := diskUse([]byte(tt.out)); got != tt.want {
				t.Errorf("diskUse(%q) = %d, want %d", tt.out, got, tt.want)
			}
		})
	}
}
