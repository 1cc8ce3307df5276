package remote

import (
	"os"
	"testing"

	"github.com/cmon-dev/cmon/integration/services"
)

func TestMain(m *testing.M) { os.Exit(services.Main(m)) }
