package sampler

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/nomad/api"

	"github.com/pgbroker/pgbroker/instances"
	"github.com/pgbroker/pgbroker/naming"
	"github.com/pgbroker/pgbroker/nomad"
	"github.com/pgbroker/pgbroker/stats"
	"github.com/pgbroker/pgbroker/store"
)

// statsBody is an allocation's stats answer as a Nomad client that measures
// memory sends it (shape of /v1/client/allocation/:id/stats, one task).
const statsBody = `{"ResourceUsage":{"CpuStats":{"Measured":["System Mode","User Mode","Percent"],"Percent":1.5,"SystemMode":0.4,"TotalTicks":30.1,"UserMode":1.1},"DeviceStats":[],"MemoryStats":{"Cache":69120000,"MappedFile":0,"MaxUsage":86319104,"Measured":["RSS","Cache","Swap","Usage","Max Usage"],"RSS":6479872,"Swap":0,"Usage":81850368}},"Tasks":{"postgres":{"Pids":null,"ResourceUsage":{"CpuStats":{"Measured":["System Mode","User Mode","Percent"],"Percent":1.5,"SystemMode":0.4,"TotalTicks":30.1,"UserMode":1.1},"DeviceStats":[],"MemoryStats":{"Cache":69120000,"Measured":["RSS","Cache","Swap","Usage","Max Usage"],"RSS":6479872,"Swap":0,"Usage":81850368}},"Timestamp":1796660895217736684}},"Timestamp":1796660895217736684}`

// fakeNomad serves the allocation list and stats of the node jobs of insts.
func fakeNomad(insts []store.Instance) *httptest.Server {
	stubs := make([]api.AllocationListStub, len(insts))
	for i, in := range insts {
		stubs[i] = api.AllocationListStub{ID: fmt.Sprintf("%08x-0000-0000-0000-000000000000", i), JobID: naming.NodesJobID(in.ShortID),
			TaskGroup: "node-0", ClientStatus: "running", AllocatedResources: &api.AllocatedResources{
				Tasks: map[string]*api.AllocatedTaskResources{"postgres": {Memory: api.AllocatedMemoryResources{MemoryMB: 512}}}}}
	}
	list, _ := json.Marshal(stubs)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/stats") {
			_, _ = w.Write([]byte(statsBody))
			return
		}
		_, _ = w.Write(list)
	}))
}

// nomadSource reads container figures through the real adapter
// (instances.Service over nomad.Cluster) from fakeNomad, and database
// figures from the fake.
type nomadSource struct {
	*fakeSource
	svc *instances.Service
}

func (s nomadSource) AllContainers(ctx context.Context, insts []store.Instance) (map[string][]stats.Node, error) {
	return s.svc.AllContainers(ctx, insts)
}

func newNomadSource(b *testing.B, src *fakeSource) (nomadSource, func()) {
	srv := fakeNomad(src.insts)
	c, err := api.NewClient(&api.Config{Address: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	svc := instances.New(nil, nil).WithAllocations(nomad.New(c, "bench", ""), stats.NewPeaks())
	return nomadSource{src, svc}, srv.Close
}
